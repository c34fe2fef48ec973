"""What EC2 says about an instance, an AMI or a snapshot, as VmInfo and ordered volumes.

CPU and memory come from the instance type (or the instance's CPU options),
firmware from the boot mode, os_hint from the platform, NICs from the ENIs in
device-index order, and the disks are the root device first, then the rest
by device name (``/dev/sdb`` < ``/dev/sdc`` < ``/dev/sdaa``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, overload

from ...errors import InvalidInputError, SourceNotFoundError
from ...models import NicInfo, VmInfo
from ...models.export import Firmware
from .clients import AwsContext
from .errors import translated

GiB = 2**30

_DEVICE = re.compile(r"^/dev/(?:sd|xvd|hd|vd)([a-z]+)(\d*)$")


@dataclass(frozen=True)
class Volume:
    """One EBS disk of the source: its device and the snapshot (or volume) holding its bytes."""

    device: str
    size_gib: int
    volume_id: str | None = None
    snapshot_id: str | None = None
    encrypted: bool = False
    root: bool = False


def device_key(name: str) -> tuple:
    """Sort key for device names: by drive letters as a number (b < z < aa), then partition."""
    match = _DEVICE.match(name)
    if not match:
        return (1, name)
    letters, number = match.groups()
    return (0, len(letters), letters, int(number or 0))


def ordered(volumes: list[Volume]) -> list[Volume]:
    """The root volume first, then the others by device name."""
    return sorted(volumes, key=lambda v: (not v.root, device_key(v.device)))


def _name_tag(resource: dict[str, Any]) -> str | None:
    return next((t["Value"] for t in resource.get("Tags") or [] if t.get("Key") == "Name" and t.get("Value")), None)


def find_instance(ctx: AwsContext, ref: str) -> dict[str, Any]:
    """The instance with id ``ref`` (``i-…``) or Name tag ``ref``, in the context's region."""
    ec2 = ctx.client("ec2")
    subject = f"instance {ref}"
    with translated(f"describing {subject}", service="ec2", region=ctx.region, subject=subject):
        if ref.startswith("i-"):
            pages = ec2.get_paginator("describe_instances").paginate(InstanceIds=[ref])
        else:
            pages = ec2.get_paginator("describe_instances").paginate(Filters=[{"Name": "tag:Name", "Values": [ref]}])
        found = [i for page in pages for r in page.get("Reservations", []) for i in r.get("Instances", [])]
    found = [i for i in found if i.get("State", {}).get("Name") not in ("terminated", "shutting-down")]
    if not found:
        raise SourceNotFoundError(
            f"{subject} was not found in region {ctx.region} (or it is terminated). Check the id or Name tag and the region.",
            field="source.region",
        )
    if len(found) > 1:
        ids = ", ".join(i["InstanceId"] for i in found)
        raise InvalidInputError(f"the Name {ref!r} matches {len(found)} instances in {ctx.region} ({ids}); give the instance id")
    return found[0]


@overload
def describe_image(ctx: AwsContext, image_id: str, *, required: Literal[True] = True) -> dict[str, Any]: ...
@overload
def describe_image(ctx: AwsContext, image_id: str, *, required: Literal[False]) -> dict[str, Any] | None: ...
def describe_image(ctx: AwsContext, image_id: str, *, required: bool = True) -> dict[str, Any] | None:
    """The AMI; when it is missing, SourceNotFoundError, or None when not ``required``."""
    subject = f"image {image_id}"
    ec2 = ctx.client("ec2")
    try:
        with translated(f"describing {subject}", service="ec2", region=ctx.region, subject=subject):
            images = ec2.describe_images(ImageIds=[image_id]).get("Images", [])
    except SourceNotFoundError:
        if required:
            raise
        return None
    if not images:
        if required:
            raise SourceNotFoundError(
                f"{subject} was not found in region {ctx.region}. Check the id and the region.", field="source.region"
            )
        return None
    return images[0]


def describe_snapshot(ctx: AwsContext, snapshot_id: str) -> dict[str, Any]:
    subject = f"snapshot {snapshot_id}"
    with translated(f"describing {subject}", service="ec2", region=ctx.region, subject=subject):
        snapshots = ctx.client("ec2").describe_snapshots(SnapshotIds=[snapshot_id]).get("Snapshots", [])
    if not snapshots:
        raise SourceNotFoundError(
            f"{subject} was not found in region {ctx.region}. Check the id and the region.", field="source.region"
        )
    return snapshots[0]


def instance_volumes(ctx: AwsContext, instance: dict[str, Any]) -> list[Volume]:
    """The instance's EBS volumes, root first (instance-store disks cannot be exported and are not listed)."""
    root = instance.get("RootDeviceName")
    mappings = {m["Ebs"]["VolumeId"]: m["DeviceName"] for m in instance.get("BlockDeviceMappings", []) if m.get("Ebs")}
    if not mappings:
        raise InvalidInputError(f"instance {instance['InstanceId']} has no EBS volume to export")
    with translated(f"describing the volumes of {instance['InstanceId']}", service="ec2", region=ctx.region):
        described = ctx.client("ec2").describe_volumes(VolumeIds=list(mappings)).get("Volumes", [])
    volumes = [
        Volume(
            device=mappings[v["VolumeId"]], size_gib=int(v["Size"]), volume_id=v["VolumeId"],
            encrypted=bool(v.get("Encrypted")), root=mappings[v["VolumeId"]] == root,
        )
        for v in described
    ]  # fmt: skip
    return ordered(volumes)


def image_volumes(image: dict[str, Any]) -> list[Volume]:
    root = image.get("RootDeviceName")
    volumes = [
        Volume(
            device=m["DeviceName"], size_gib=int(m["Ebs"].get("VolumeSize") or 0), snapshot_id=m["Ebs"]["SnapshotId"],
            encrypted=bool(m["Ebs"].get("Encrypted")), root=m["DeviceName"] == root,
        )
        for m in image.get("BlockDeviceMappings", [])
        if m.get("Ebs", {}).get("SnapshotId")
    ]  # fmt: skip
    if not volumes:
        raise InvalidInputError(f"image {image['ImageId']} has no EBS snapshot to export (instance-store AMIs cannot be)")
    return ordered(volumes)


def firmware(boot_mode: str | None, architecture: str | None) -> Firmware:
    """uefi or bios from EC2's boot mode; without one, arm64 boots UEFI and x86 legacy BIOS."""
    if boot_mode in ("uefi", "uefi-preferred"):
        return Firmware.uefi
    if boot_mode == "legacy-bios":
        return Firmware.bios
    return Firmware.uefi if architecture == "arm64" else Firmware.bios


def os_hint(platform: str | None, platform_details: str | None) -> str:
    text = f"{platform or ''} {platform_details or ''}".lower()
    return "windows" if "windows" in text else "linux"


def nics(instance: dict[str, Any]) -> list[NicInfo]:
    enis = sorted(instance.get("NetworkInterfaces", []), key=lambda n: n.get("Attachment", {}).get("DeviceIndex", 0))
    return [
        NicInfo(id=n["NetworkInterfaceId"], mac=n.get("MacAddress"), network=n.get("SubnetId") or n.get("VpcId"))
        for n in enis
    ]


def _cpu_and_memory(ctx: AwsContext, instance: dict[str, Any]) -> tuple[int | None, float | None]:
    kind = instance.get("InstanceType")
    cpu = mem = None
    if kind:
        with translated(f"describing instance type {kind}", service="ec2", region=ctx.region):
            types = ctx.client("ec2").describe_instance_types(InstanceTypes=[kind]).get("InstanceTypes", [])
        if types:
            cpu = types[0].get("VCpuInfo", {}).get("DefaultVCpus")
            mib = types[0].get("MemoryInfo", {}).get("SizeInMiB")
            mem = mib / 1024 if mib else None
    options = instance.get("CpuOptions") or {}
    if options.get("CoreCount"):
        cpu = options["CoreCount"] * options.get("ThreadsPerCore", 1)
    return cpu, mem


def instance_vm_info(ctx: AwsContext, instance: dict[str, Any]) -> VmInfo:
    boot_mode = instance.get("CurrentInstanceBootMode") or instance.get("BootMode")
    if not boot_mode and instance.get("ImageId"):
        image = describe_image(ctx, instance["ImageId"], required=False)  # the AMI may be gone: that is fine
        boot_mode = (image or {}).get("BootMode")
    cpu, mem = _cpu_and_memory(ctx, instance)
    return VmInfo(
        vm_id=instance["InstanceId"],
        vm_name=_name_tag(instance) or instance["InstanceId"],
        datacenter=instance.get("Placement", {}).get("AvailabilityZone") or ctx.region,
        cpu=cpu,
        mem_gb=mem,
        firmware=firmware(boot_mode, instance.get("Architecture")),
        os_hint=os_hint(instance.get("Platform"), instance.get("PlatformDetails")),
        os_version=instance.get("PlatformDetails"),
        nics=nics(instance),
    )


def image_vm_info(ctx: AwsContext, image: dict[str, Any]) -> VmInfo:
    return VmInfo(
        vm_id=image["ImageId"],
        vm_name=image.get("Name") or image["ImageId"],
        datacenter=ctx.region,
        firmware=firmware(image.get("BootMode"), image.get("Architecture")),
        os_hint=os_hint(image.get("Platform"), image.get("PlatformDetails")),
        os_version=image.get("PlatformDetails"),
    )


def snapshot_vm_info(ctx: AwsContext, snapshot: dict[str, Any]) -> VmInfo:
    return VmInfo(vm_id=snapshot["SnapshotId"], vm_name=_name_tag(snapshot) or snapshot["SnapshotId"], datacenter=ctx.region)
