"""What hyper2kvm is handed: the FIX options we rely on reach it, and the stages we never trust stay off."""

from __future__ import annotations

import json

from hyperexport.migration import run_migration

from .fakes import recording_converter
from .test_lifecycle import request


def test_hyper2kvm_reads_the_fix_options_we_set(base_raw, tmp_path, monkeypatch):
    monkeypatch.setenv("HYPEREXPORT_GUESTFS_ACCEL", "tcg")  # the stand-in starts no appliance: no KVM probe
    record = tmp_path / "handed.json"
    fake = recording_converter(tmp_path / "bin", record)
    report = run_migration(request(base_raw, tmp_path / "out", binary=fake, fix_guest=True, target_format="vmdk"))

    assert report.success
    handed = json.loads(record.read_text())
    assert handed["stages"]["fix"] == {
        "enabled": True, "backup": False, "update_grub": True, "regen_initramfs": True,
        "fstab_mode": "stabilize-all", "remove_vmware_tools": False,
    }
    assert handed["stages"]["inspect"] == {"enabled": True}
    assert handed["stages"]["convert"] == handed["stages"]["validate"] == {"enabled": False}
    assert handed["output_format"] == "vmdk"
    assert [p.suffix for p in report.conversion.converted_files] == [".vmdk"]
