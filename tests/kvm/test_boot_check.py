"""The boot check boots the real sample under qemu-system-x86_64 (TCG here; KVM only where it works)."""

from __future__ import annotations

import shutil
import tarfile
import threading
import time

import pytest
from support.procwatch import descendants

from hyperexport import cancel, procs
from hyperexport.errors import CancelledError, UnsafeImageError, ValidationError
from hyperexport.kvm.boot_check import boot_check, require_boot
from hyperexport.kvm.models import BootCheckOptions, DomainOptions
from hyperexport.kvm.sample_guest import SAMPLE_MARKER
from hyperexport.staging import sha256_file as sha256

from .helpers import qemu_img_convert, sample_manifest, vmdk_to_qcow2

TCG = BootCheckOptions(accel="tcg", time_limit_seconds=150)


def _report(what, result):
    print(f"\n{what}: passed={result.passed} accel={result.accel} to_marker={result.seconds_to_marker}s "
          f"wall={result.seconds}s kvm_fallback={result.kvm_fallback}")


def _no_work_dirs_left(directory):
    assert not list(directory.glob(".boot-check-*")), "the check's temporary directory outlived it"


def test_raw_sample_boots_on_virtio_and_the_disk_is_unchanged(bootable_raw):
    before = sha256(bootable_raw)
    result = boot_check([bootable_raw], sample_manifest(fmt="raw"), TCG)
    _report("raw sample, virtio-blk, BIOS, TCG", result)
    assert result.passed and result.accel == "tcg", result.message
    assert SAMPLE_MARKER in result.console_tail and "is /dev/vda2" in result.console_tail
    assert 0 < result.seconds_to_marker < TCG.time_limit_seconds
    assert sha256(bootable_raw) == before
    _no_work_dirs_left(bootable_raw.parent)


def test_qcow2_boots_on_sata_and_is_never_written(bootable_qcow2):
    before = sha256(bootable_qcow2)
    mtime = bootable_qcow2.stat().st_mtime_ns
    result = require_boot(boot_check([bootable_qcow2], sample_manifest(), TCG, domain=DomainOptions(virtio=False)))
    _report("qcow2 (qemu-img convert), SATA, BIOS, TCG", result)
    assert "is /dev/sda2" in result.console_tail  # the AHCI disk, through the sd_mod driver
    assert sha256(bootable_qcow2) == before and bootable_qcow2.stat().st_mtime_ns == mtime
    _no_work_dirs_left(bootable_qcow2.parent)


def test_uefi_boot_with_ovmf(bootable_qcow2):
    # OVMF without secure boot: systemd-boot (BOOTX64.EFI) and Debian's kernel are not signed by the keys
    # that OVMF_VARS_4M.ms.fd enrols, so a secure-boot start would be refused (the domain XML test covers it).
    result = boot_check([bootable_qcow2], sample_manifest(firmware="uefi"), TCG)
    _report("qcow2, virtio-blk, UEFI (OVMF), TCG", result)
    assert result.passed, result.message
    assert "EFI stub" in result.console_tail


def test_secure_boot_firmware_refuses_the_unsigned_loader(bootable_qcow2):
    # OVMF's secure-boot build (SMM, secure pflash, Microsoft keys enrolled) really enforces: the sample's
    # systemd-boot is unsigned, so the check fails fast and says why. A signed guest (shim) would pass.
    start = time.monotonic()
    result = boot_check([bootable_qcow2], sample_manifest(firmware="uefi", secureboot=True), TCG)
    _report("qcow2, UEFI secure boot, TCG", result)
    assert not result.passed and "Access Denied" in result.console_tail and "secure boot refused" in result.message
    assert time.monotonic() - start < 120


def test_auto_accel_falls_back_to_tcg_when_kvm_fails(bootable_qcow2):
    result = boot_check([bootable_qcow2], sample_manifest(), BootCheckOptions(accel="auto", kvm_probe_seconds=20, time_limit_seconds=150))
    _report("qcow2, accel auto", result)
    assert result.passed, result.message
    # On this host /dev/kvm opens but a KVM guest dies at once; where KVM works the first attempt passes.
    assert (result.accel == "tcg") == (result.kvm_fallback is not None)


def test_zeroed_boot_sector_fails_with_the_console_tail(bootable_raw, tmp_path):
    broken_raw = tmp_path / "broken.raw"
    shutil.copyfile(bootable_raw, broken_raw)
    with open(broken_raw, "r+b") as disk:
        disk.write(bytes(512))
    # An output directory whose name means something in qemu's option syntax: the console path still works.
    broken = qemu_img_convert(broken_raw, tmp_path / "out,file=x" / "disk-0.qcow2")
    start = time.monotonic()
    result = boot_check([broken], sample_manifest(), TCG)
    elapsed = time.monotonic() - start
    _report("zeroed boot sector", result)
    assert not result.passed
    assert "No bootable device" in result.console_tail and "not a bootable disk" in result.message
    assert "Last console lines:" in result.message and "What to do" in result.message
    assert elapsed < 120, f"a dead boot sector took {elapsed:.0f}s to fail"
    with pytest.raises(ValidationError, match="not a bootable disk"):
        require_boot(result)


def test_time_limit_stops_qemu(bootable_qcow2):
    start = time.monotonic()
    result = boot_check([bootable_qcow2], sample_manifest(), BootCheckOptions(accel="tcg", time_limit_seconds=1))
    elapsed = time.monotonic() - start
    print(f"\n1 s limit: verdict after {elapsed:.1f}s")
    assert not result.passed and "within 1s" in result.message
    assert elapsed < 30
    assert not descendants(("qemu-system",)), "qemu outlived its time limit"


@pytest.mark.parametrize("how", ["flag", "flag-and-terminate-all"])
def test_cancel_stops_qemu_at_once(bootable_qcow2, how):
    """As the CLI's SIGINT handler does: the run-wide flag, and (second case) procs.terminate_all at once."""
    outcome = {}

    def run():
        try:
            boot_check([bootable_qcow2], sample_manifest(), TCG)
        except CancelledError as error:
            outcome["error"] = error

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 30
    while not descendants(("qemu-system",)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert descendants(("qemu-system",)), "qemu never started"
    cancelled_at = time.monotonic()
    cancel.request_cancel()
    if how == "flag-and-terminate-all":
        procs.terminate_all(grace_s=0.0)
    worker.join(timeout=20)
    print(f"\ncancel ({how}): the check ended {time.monotonic() - cancelled_at:.1f}s after the request")
    assert not worker.is_alive() and "interrupted" in str(outcome["error"])
    assert not descendants(("qemu-system",))
    _no_work_dirs_left(bootable_qcow2.parent)


def test_a_qcow2_with_a_backing_file_is_refused(bootable_qcow2, tmp_path):
    from hyperexport import qemu

    hostile = qemu.create_overlay(bootable_qcow2, "qcow2", tmp_path / "disk-0.qcow2")
    with pytest.raises(UnsafeImageError, match="backing file"):
        boot_check([hostile], sample_manifest(), TCG)


def test_the_bootable_ova_disk_boots_with_the_domain_of_its_ovf(tmp_path):
    from hyperexport.kvm.sample_ova import make_bootable_ova
    from hyperexport.ovf import parse_ovf

    ova = make_bootable_ova(tmp_path / "bootable-sample.ova")
    with tarfile.open(ova) as archive:
        archive.extractall(tmp_path / "ova", filter="data")
    descriptor = parse_ovf(tmp_path / "ova" / "bootable-sample.ovf")
    converted = vmdk_to_qcow2(tmp_path / "ova" / descriptor.disks[0].href, tmp_path / "out" / "disk-0.qcow2")
    manifest = sample_manifest(name=descriptor.vm.vm_name, nics=[n.model_dump() for n in descriptor.vm.nics])
    manifest.vm.cpu, manifest.vm.mem_gb, manifest.vm.firmware = descriptor.vm.cpu, int(descriptor.vm.mem_gb), descriptor.vm.firmware.value
    result = require_boot(boot_check([converted], manifest, TCG))
    _report("OVA (streamOptimized VMDK) -> qcow2, BIOS, TCG", result)
    assert result.seconds_to_marker is not None
