"""The bootable sample guest as a VMware-style OVA: SCSI controller, vmxnet3 NIC with a MAC, 2 CPUs, 1 GiB."""

from __future__ import annotations

from pathlib import Path

from ..samples import make_ova
from .sample_guest import make_bootable_guest

SAMPLE_MAC = "00:50:56:aa:bb:01"


def make_bootable_ova(dest: Path, name: str = "bootable-sample", *, efi: bool = False, size_mib: int = 64) -> Path:
    """Write ``dest`` (an OVA); ``efi`` marks the VM as UEFI in the OVF (the disk boots under BIOS and UEFI)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    raw = make_bootable_guest(dest.parent / f".{dest.name}.raw", size_mib)
    try:
        return make_ova([raw], dest, name, cpus=2, mem_mib=1024, macs=(SAMPLE_MAC,), efi=efi,
                        scsi_controller="lsilogic", nic_model="vmxnet3")
    finally:
        raw.unlink(missing_ok=True)

