"""Guest fixes through hyper2kvm and libguestfs: the source is never written, the output is fixed.

It runs on a host whose KVM hangs (a qemu-system-x86_64 whose KVM guests never boot, as on hosts
stuck at "Booting from ROM"): the bounded KVM probe gives up and the appliance boots under TCG.
Slow (TCG), so it runs once, on the smallest guest that proves it.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from converters.fakes import hanging_kvm_qemu
from hyperexport.converters.guestfs_env import kvm_usable
from hyperexport.migration import run_migration
from hyperexport.samples import make_linux_guest
from support.migrate import local_request, sha256

pytestmark = pytest.mark.slow


_BETWEEN = "----- next disk -----"


def _guest_fstabs(output, source) -> tuple[str, str]:
    """/etc/fstab of both guests, read by one appliance (each boot under TCG costs half a minute)."""
    env = {**os.environ, "LIBGUESTFS_BACKEND": "direct", "LIBGUESTFS_BACKEND_SETTINGS": "force_tcg"}
    script = (f"run\nmount-ro /dev/sda1 /\ncat /etc/fstab\numount /\necho {_BETWEEN}\n"
              "mount-ro /dev/sdb1 /\ncat /etc/fstab\n")
    proc = subprocess.run(["guestfish", "--ro", "--format=qcow2", "-a", str(output), "--format=raw", "-a", str(source)],
                          input=script, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    fixed, original = proc.stdout.split(_BETWEEN + "\n")
    return fixed, original


def test_fix_runs_on_an_overlay_and_leaves_the_source_untouched(tmp_path, monkeypatch):
    monkeypatch.setenv("LIBGUESTFS_HV", str(hanging_kvm_qemu(tmp_path / "hanging-kvm")))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no verdict from an earlier run
    monkeypatch.setenv("HYPEREXPORT_GUESTFS_PROBE_SECONDS", "10")  # the fake KVM never boots: any bound proves it
    source = make_linux_guest(tmp_path / "guest.raw")
    before = sha256(source)
    lines: list[str] = []
    report = run_migration(local_request(source, tmp_path / "out", fix_guest=True), log=lines.append)

    assert sha256(source) == before, "hyper2kvm's FIX wrote to the source disk"
    assert report.success and report.conversion.guest_modified
    output = report.conversion.converted_files[0]
    verdict = report.validation.disks[0]
    assert (verdict.check.value, verdict.virtual_size.value, verdict.compare.value) == ("passed", "passed", "skipped")
    info = subprocess.run(["qemu-img", "info", "--output=json", str(output)], capture_output=True, text=True).stdout
    assert "backing-filename" not in info, "the output must stand alone, not lean on the overlay"
    fstab, original = _guest_fstabs(output, source)
    assert "UUID=" in fstab and "/dev/sda1" not in fstab.split("#")[0], fstab
    assert "/dev/sda1 / ext4" in original, original
    assert any("hyper2kvm:" in line and "fix" in line.lower() for line in lines)
    if kvm_usable():
        assert any("the KVM appliance did not boot in 10s; using TCG" in line for line in lines), lines
