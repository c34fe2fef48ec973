"""An instance's description as hyperexport's VmInfo, and its persistent disks in boot order.

CPUs and memory come from the machine type; the firmware from the boot disk's UEFI_COMPATIBLE guest OS
feature and the instance's shielded VM settings; ``os_hint`` from the boot disk's licenses (public images
carry their OS's license). Compute Engine derives each NIC's MAC address from its internal IP and stores
none: the NICs are recorded with their networks and no MAC, and the result says so.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from ...errors import InvalidInputError
from ...models import NicInfo, VmInfo
from ...models.export import Firmware
from .clients import GcpContext
from .errors import translated
from .options import NAME

GiB = 2**30
MAC_NOTE = "Compute Engine derives NIC MAC addresses from their IPs and stores none: no MAC recorded, the KVM domain gets new ones"

#: License project or name fragments, the OS they mean (first match wins).
_OS_BY_LICENSE = (
    ("windows", "windows"), ("rhel", "rhel"), ("centos", "centos"), ("rocky", "rocky"), ("ubuntu", "ubuntu"),
    ("debian", "debian"), ("sles", "sles"), ("suse", "sles"), ("fedora", "fedora"), ("cos-cloud", "cos"),
    ("almalinux", "almalinux"), ("oracle", "oracle"),
)  # fmt: skip


class Disk(NamedTuple):
    """One persistent disk to export: its name, the name on the worker, its size and whether it boots."""

    name: str
    size_gib: int
    boot: bool
    device_index: int
    snapshot: str | None = None  # an existing snapshot to export from, instead of snapshotting the disk


def last(url: str | None) -> str:
    return (url or "").rstrip("/").rsplit("/", 1)[-1]


def get_instance(ctx: GcpContext, name: str) -> Any:
    check_zone(ctx)
    with translated(f"reading instance {name}", subject=f"instance {name}"):
        return ctx.compute("Instances").get(project=ctx.project, zone=ctx.zone, instance=name)


def check_zone(ctx: GcpContext) -> None:
    """The zone exists in the project (a missing project or zone is named as such, not as a missing VM)."""
    with translated(f"reading zone {ctx.zone}", subject=f"zone {ctx.zone}"):
        ctx.compute("Zones").get(project=ctx.project, zone=ctx.zone)


def get_disk(ctx: GcpContext, name: str) -> Any:
    with translated(f"reading disk {name}", subject=f"disk {name}"):
        return ctx.compute("Disks").get(project=ctx.project, zone=ctx.zone, disk=name)


def get_snapshot(ctx: GcpContext, name: str) -> Any:
    with translated(f"reading snapshot {name}", subject=f"snapshot {name}"):
        return ctx.compute("Snapshots").get(project=ctx.project, snapshot=name)


def instance_disks(ctx: GcpContext, instance: Any) -> list[Disk]:
    """The instance's persistent disks, boot disk first, then by device index (local SSDs cannot be snapshotted)."""
    found = []
    for attached in instance.disks:
        if attached.type_ == "SCRATCH":
            raise InvalidInputError(
                f"instance {instance.name} has a local SSD ({attached.device_name}), which cannot be snapshotted or "
                "exported; copy its data to a persistent disk first"
            )
        name = _zonal_disk(ctx, instance.name, attached)
        if not NAME.match(name):
            raise InvalidInputError(f"instance {instance.name} lists a disk with an unexpected name {name[:80]!r}")
        found.append(Disk(name=name, size_gib=int(attached.disk_size_gb or 0), boot=bool(attached.boot), device_index=int(attached.index)))
    if not found:
        raise InvalidInputError(f"instance {instance.name} has no persistent disk to export")
    found.sort(key=lambda d: (not d.boot, d.device_index))
    return [d._replace(size_gib=d.size_gib or int(get_disk(ctx, d.name).size_gb)) for d in found]


def _zonal_disk(ctx: GcpContext, instance: str, attached: Any) -> str:
    """The name of an attached disk, which must be a zonal disk of the run's project and zone: the snapshot, the
    temporary disk and the clean-up all name disks there (a regional or another project's disk would be missed)."""
    source = str(attached.source or "")
    found = re.search(rf"(?:^|/)projects/{re.escape(ctx.project)}/zones/{re.escape(ctx.zone)}/disks/([^/]+)$", source)
    if found:
        return found.group(1)
    shown = source.split("/compute/v1/", 1)[-1][:200]
    raise InvalidInputError(
        f"instance {instance} has the disk {shown!r} ({str(attached.device_name)[:64]}), which is not a zonal disk "
        f"projects/{ctx.project}/zones/{ctx.zone}/disks/NAME: hyperexport exports only disks of the instance's project "
        f"and zone. For a regional or another project's disk, snapshot it or copy it to a zonal disk in {ctx.zone} "
        "and export that one (disk=... or snapshot=...)",
        field="source.instance",
    )


def _os_hint(licenses: list[str]) -> str | None:
    for url in licenses:
        text = url.lower()
        for fragment, os_name in _OS_BY_LICENSE:
            if fragment in text:
                return os_name
    return None


def machine_type(ctx: GcpContext, url: str) -> Any:
    name = last(url)
    with translated(f"reading machine type {name}", subject=f"machine type {name}"):
        return ctx.compute("MachineTypes").get(project=ctx.project, zone=ctx.zone, machine_type=name)


def instance_vm_info(ctx: GcpContext, instance: Any, boot_disk: Any) -> VmInfo:
    kind = machine_type(ctx, instance.machine_type)
    shielded = instance.shielded_instance_config if "shielded_instance_config" in instance else None
    features = {f.type_ for f in boot_disk.guest_os_features}
    uefi = "UEFI_COMPATIBLE" in features or bool(shielded and (shielded.enable_secure_boot or shielded.enable_vtpm))
    nics = [
        NicInfo(id=f"nic{i}", mac=None, network=last(nic.network) or None)
        for i, nic in enumerate(instance.network_interfaces)
    ]
    return VmInfo(
        vm_id=str(instance.id) if instance.id else None, vm_name=instance.name, datacenter=ctx.zone,
        cpu=int(kind.guest_cpus) or None, mem_gb=round(int(kind.memory_mb) / 1024, 3) or None,
        firmware=Firmware.uefi if uefi else Firmware.bios,
        secureboot=bool(shielded.enable_secure_boot) if shielded else False,
        os_hint=_os_hint(list(boot_disk.licenses)), nics=nics,
    )  # fmt: skip


def disk_vm_info(ctx: GcpContext, name: str, licenses: list[str], features: set[str]) -> VmInfo:
    return VmInfo(
        vm_name=name, datacenter=ctx.zone, firmware=Firmware.uefi if "UEFI_COMPATIBLE" in features else None,
        os_hint=_os_hint(licenses),
    )
