"""A VM's or disk's description from Resource Manager: its managed disks in boot order and its hardware.

Disks come OS disk first, then data disks by LUN. CPUs and memory come from the VM size (the region's sizes
list, read once per region and process), firmware from the security profile (Trusted Launch and
confidential VMs boot UEFI, with secure boot as set) or the OS disk's Hyper-V generation (V2: UEFI),
``os_hint`` from the OS disk's osType and the image reference, MACs from the NICs (azure-mgmt-network).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

from ...errors import SourceNotFoundError
from ...models import NicInfo, VmInfo
from ...models.export import Firmware
from .clients import AzureContext
from .errors import translated
from .options import parse_resource_id

GiB = 2**30


@dataclass(frozen=True)
class ManagedDisk:
    """One disk of the VM, in boot order."""

    disk_id: str
    name: str
    lun: int | None  # None: the OS disk
    size_bytes: int
    sku: str | None
    location: str


def get_vm(ctx: AzureContext, resource_group: str, name: str) -> Any:
    subject = f"VM {name} in resource group {resource_group}"
    with translated(f"reading {subject}", subject=subject):
        return ctx.compute.virtual_machines.get(resource_group, name)


def get_disk(ctx: AzureContext, disk_id: str) -> Any:
    ref = parse_resource_id(disk_id, "disks", "source.disk_id")
    with translated(f"reading managed disk {ref.name} in resource group {ref.resource_group}", subject=f"disk {ref.name}"):
        return ctx.compute.disks.get(ref.resource_group, ref.name)


def disk_size(disk: Any) -> int:
    size = disk.disk_size_bytes or (disk.disk_size_gb or 0) * GiB
    if not size or size <= 0 or size > 64 * 2**40:
        raise SourceNotFoundError(f"managed disk {disk.name} reports no usable size ({size!r}); is it still being created?")
    return int(size)


def managed_disk(ctx: AzureContext, disk_id: str, lun: int | None) -> ManagedDisk:
    disk = get_disk(ctx, disk_id)
    sku = disk.sku.name if disk.sku is not None else None
    sku = str(getattr(sku, "value", sku)) if sku is not None else None  # the SDK's enum or a plain string
    return ManagedDisk(disk_id=disk.id or disk_id, name=disk.name, lun=lun, size_bytes=disk_size(disk), sku=sku, location=disk.location)


def vm_disks(ctx: AzureContext, vm: Any) -> list[ManagedDisk]:
    """The VM's managed disks: OS disk first, then data disks by LUN. Unmanaged (VHD-in-storage) disks are refused."""
    storage = vm.storage_profile
    named: list[tuple[int | None, Any]] = [(None, storage.os_disk)]
    named += [(d.lun, d) for d in sorted(storage.data_disks or [], key=lambda d: int(d.lun))]
    disks = []
    for lun, disk in named:
        if disk.managed_disk is None or not disk.managed_disk.id:
            raise SourceNotFoundError(
                f"disk {disk.name} of VM {vm.name} is an unmanaged VHD in a storage account; the azure provider exports "
                "managed disks only (convert the VM to managed disks first)"
            )
        disks.append(managed_disk(ctx, disk.managed_disk.id, lun))
    return disks


_SIZES: dict[tuple[str, str, str], dict[str, tuple[int, int]]] = {}
_SIZES_LOCK = threading.Lock()


def _sizes(ctx: AzureContext, location: str) -> dict[str, tuple[int, int]]:
    """The region's VM sizes (name -> cores, MiB of memory), listed once per endpoint, subscription and region."""
    key = (ctx.login.arm_endpoint, ctx.subscription, location)
    with _SIZES_LOCK:
        if key not in _SIZES:
            with translated(f"listing the VM sizes of {location}"):
                listed = ctx.compute.virtual_machine_sizes.list(location)
                _SIZES[key] = {s.name: (int(s.number_of_cores), int(s.memory_in_mb)) for s in listed}
        return _SIZES[key]


def cpu_and_memory(ctx: AzureContext, location: str, size: str | None) -> tuple[int | None, float | None]:
    if not size:
        return None, None
    sizes = _sizes(ctx, location)
    if size not in sizes:
        return None, None
    cores, memory_mb = sizes[size]
    return cores, memory_mb / 1024


def firmware(vm: Any, os_disk: Any | None) -> tuple[Firmware, bool | None]:
    security = vm.security_profile
    if security is not None and (security.security_type or "").lower() in ("trustedlaunch", "confidentialvm"):
        uefi = security.uefi_settings
        return Firmware.uefi, bool(uefi.secure_boot_enabled) if uefi is not None else False
    generation = getattr(os_disk, "hyper_v_generation", None)
    return (Firmware.uefi if generation == "V2" else Firmware.bios), None


def os_hint(os_type: str | None, image: Any | None) -> str | None:
    hint = (os_type or "").lower() or None
    if image is not None and image.publisher and image.offer:
        return f"{hint or 'unknown'} ({image.publisher}:{image.offer}:{image.sku or ''})"
    return hint


def _nic(ctx: AzureContext, nic_id: str, index: int) -> NicInfo:
    match = re.match(r"^/subscriptions/[^/]+/resourceGroups/([^/]+)/providers/Microsoft\.Network/networkInterfaces/([^/]+)$", nic_id, re.I)
    if not match:
        return NicInfo(id=f"nic{index}")
    group, name = match.groups()
    with translated(f"reading network interface {name} in resource group {group}", subject=f"NIC {name}"):
        nic = ctx.network.network_interfaces.get(group, name)
    mac = (nic.mac_address or "").replace("-", ":").lower() or None
    if mac is not None and not re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", mac):
        mac = None
    subnet = None
    for config in nic.ip_configurations or []:
        if config.subnet is not None and config.subnet.id:
            parts = config.subnet.id.split("/")
            subnet = "/".join(parts[-3::2]) if len(parts) >= 3 else None  # vnet/subnet
            break
    return NicInfo(id=re.sub(r"[^A-Za-z0-9_-]", "-", name)[:64] or f"nic{index}", mac=mac, network=subnet)


def vm_info(ctx: AzureContext, vm: Any, os_disk: Any | None) -> VmInfo:
    cpu, memory = cpu_and_memory(ctx, vm.location, vm.hardware_profile.vm_size if vm.hardware_profile else None)
    boot, secure = firmware(vm, os_disk)
    storage = vm.storage_profile
    interfaces = (vm.network_profile.network_interfaces or []) if vm.network_profile else []
    return VmInfo(
        vm_id=vm.vm_id or vm.id, vm_name=vm.name, datacenter=vm.location, cpu=cpu, mem_gb=memory, firmware=boot,
        secureboot=secure, os_hint=os_hint(storage.os_disk.os_type, storage.image_reference),
        nics=[_nic(ctx, nic.id, i) for i, nic in enumerate(interfaces) if nic.id],
    )


def disk_vm_info(disk: Any) -> VmInfo:
    """A lone disk or snapshot: what it says of its OS and generation."""
    generation = getattr(disk, "hyper_v_generation", None)
    return VmInfo(vm_id=disk.id, vm_name=disk.name, datacenter=disk.location, os_hint=(disk.os_type or "").lower() or None,
                  firmware=Firmware.uefi if generation == "V2" else None)
