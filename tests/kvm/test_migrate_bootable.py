"""KVM-ready output through the real CLI: the bootable sample OVA migrates, its libvirt domain validates, and the
boot check sees the guest come up; a guest that cannot boot fails the run with the console's last lines."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from hyperexport.kvm import make_bootable_ova
from hyperexport.report import MigrationReport

from support.migrate import assert_identical


def _cli(server, *args: str) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("hyperexport")), "--no-progress", *args]
    return subprocess.run(command, env=server.env(), capture_output=True, text=True, timeout=900)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_bootable_sample_migrates_and_boots(prefect_server, tmp_path):
    ova = make_bootable_ova(tmp_path / "src" / "bootable-sample.ova")
    before = _sha(ova)
    run = _cli(prefect_server, "--provider", "local", "--vm", str(ova), "--output", str(tmp_path / "out"),
               "--convert", "--converter", "qemu-img", "--boot-check", "--boot-timeout", "300")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = MigrationReport.model_validate_json((tmp_path / "out" / "migration-report.json").read_text())
    assert report.domain is not None and report.domain.xml_path.exists() and "validates" in report.domain.validation
    xml = report.domain.xml_path.read_text()
    assert "<vcpu" in xml and "00:50:56:aa:bb:01" in xml and "virtio" in xml
    assert report.boot_check is not None and report.boot_check.passed and report.boot_check.seconds_to_marker
    print(f"\nboot check: {report.boot_check.accel}, marker after {report.boot_check.seconds_to_marker:.1f}s")
    assert f"virsh define {report.domain.xml_path}" in run.stdout and f"virsh start {report.domain.name}" in run.stdout
    for staged, output in zip(report.disks, report.conversion.converted_files):
        assert_identical(staged.path, staged.format.qemu_format, Path(output))
    assert _sha(ova) == before


def test_a_guest_that_cannot_boot_fails_the_run_with_its_console(prefect_server, bootable_raw, tmp_path):
    broken = tmp_path / "src" / "broken.raw"
    broken.parent.mkdir()
    shutil.copy(bootable_raw, broken)
    with open(broken, "r+b") as disk:
        disk.write(bytes(512))  # the boot sector
    before = _sha(broken)
    run = _cli(prefect_server, "--provider", "local", "--vm", str(broken), "--output", str(tmp_path / "out"),
               "--convert", "--converter", "qemu-img", "--boot-check", "--boot-timeout", "300")
    assert run.returncode == 2, run.stdout[-2000:] + run.stderr[-3000:]
    error = run.stderr[run.stderr.rindex("hyperexport: error: "):]
    assert "No bootable device" in error, error
    assert_identical(broken, "raw", tmp_path / "out" / "disk-0.qcow2")  # converted faithfully; the guest was broken
    assert _sha(broken) == before
    assert not list((tmp_path / "out").glob(".boot-check-*")), "the boot check's overlays are removed"


def test_a_boot_check_of_vmdk_outputs_is_refused_before_any_work(bootable_raw, tmp_path):
    import pytest

    from hyperexport.errors import InvalidInputError
    from hyperexport.migration import MigrationRequest, preflight
    from hyperexport.validate_input import build

    request = build(MigrationRequest, provider="local", source={"source": str(bootable_raw)},
                    export={"output_dir": str(tmp_path / "out")}, converter="qemu-img",
                    convert_options={"target_format": "vmdk"}, kvm={"boot_check": True})
    with pytest.raises(InvalidInputError) as refused:
        preflight(request)
    assert refused.value.field == "kvm.boot_check" and "qcow2 or raw" in str(refused.value)
