"""A VM's hardware as the manifest records it, and its disks in controller/unit order with the boot disk first.

CPUs and memory from ``config.hardware``, firmware (``efi`` → uefi) and secure boot from ``config``, the guest
OS id (``debian11_64Guest``) as ``os_hint``, each NIC's MAC and the name of the network it is on (a standard
port group's name, or a distributed port group's, found by its key among the VM's networks).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from ...models import VmInfo
from ...models.export import Firmware, NicInfo
from .credentials import pyvmomi


class DiskDevice(BaseModel):
    """One virtual disk of a VM, as its configuration (or a snapshot's) describes it."""

    model_config = ConfigDict(frozen=True)

    key: int
    label: str
    controller_key: int
    unit: int
    capacity_bytes: int
    file_name: str  # "[datastore] folder/name.vmdk": the top of the disk's chain
    datastore: str
    chain: tuple[str, ...]  # the backing files from the top to the base; one: no snapshot before ours
    backing: str  # FlatVer2BackingInfo, SeSparseBackingInfo, ...


def vm_info(vm: Any, config: Any, datacenter: str | None) -> VmInfo:
    hardware = config.hardware
    boot = getattr(config, "bootOptions", None)
    return VmInfo(
        vm_id=vm._moId, vm_name=config.name, datacenter=datacenter,
        cpu=hardware.numCPU or None, mem_gb=(hardware.memoryMB / 1024) if hardware.memoryMB else None,
        firmware=Firmware.uefi if config.firmware == "efi" else Firmware.bios,
        secureboot=bool(getattr(boot, "efiSecureBootEnabled", False)) if config.firmware == "efi" else False,
        os_hint=config.guestId or None, nics=nics(vm, hardware.device),
    )  # fmt: skip


def nics(vm: Any, devices: list[Any]) -> list[NicInfo]:
    vim, _ = pyvmomi()
    portgroups: dict[str, str] = {}
    cards = sorted((d for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)), key=lambda d: d.key)
    if any(isinstance(c.backing, vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo) for c in cards):
        portgroups = {n.key: n.name for n in vm.network if isinstance(n, vim.dvs.DistributedVirtualPortgroup)}
    found = []
    for i, card in enumerate(cards):
        backing = card.backing
        if isinstance(backing, vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo):
            network = portgroups.get(backing.port.portgroupKey, backing.port.portgroupKey)
        elif isinstance(backing, vim.vm.device.VirtualEthernetCard.OpaqueNetworkBackingInfo):
            network = backing.opaqueNetworkId
        else:
            network = getattr(backing, "deviceName", None)
        mac = card.macAddress if card.macAddress and len(card.macAddress) == 17 else None
        found.append(NicInfo(id=f"nic-{i}", mac=mac, network=network))
    return found


def disks(devices: list[Any], boot_options: Any | None) -> list[DiskDevice]:
    """The VM's disks, boot disk first, then in controller and unit order."""
    vim, _ = pyvmomi()
    found = []
    for device in devices:
        if not isinstance(device, vim.vm.device.VirtualDisk):
            continue
        backing = device.backing
        chain: list[str] = []
        node = backing
        while node is not None and len(chain) < 256:  # vSphere allows 32 snapshots; bounded anyway
            chain.append(str(node.fileName))
            node = getattr(node, "parent", None)
        label = getattr(getattr(device, "deviceInfo", None), "label", None) or f"disk {device.key}"
        found.append(DiskDevice(
            key=device.key, label=label, controller_key=device.controllerKey or 0, unit=device.unitNumber or 0,
            capacity_bytes=int(device.capacityInBytes or (device.capacityInKB or 0) * 1024),
            file_name=str(getattr(backing, "fileName", "") or ""),
            datastore=str(getattr(getattr(backing, "datastore", None), "name", "") or ""),
            chain=tuple(chain), backing=type(backing).__name__.rsplit(".", 1)[-1],
        ))  # fmt: skip
    found.sort(key=lambda d: (d.controller_key, d.unit))
    boot_key = _boot_disk_key(boot_options)
    found.sort(key=lambda d: d.key != boot_key)  # stable: the rest keep their order
    return found


def _boot_disk_key(boot_options: Any | None) -> int | None:
    vim, _ = pyvmomi()
    for entry in getattr(boot_options, "bootOrder", None) or []:
        if isinstance(entry, vim.vm.BootOptions.BootableDiskDevice):
            return int(entry.deviceKey)
    return None
