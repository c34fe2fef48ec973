"""The ``aws`` provider: an EC2 instance, an AMI or an EBS snapshot, to one raw or VM Export image per disk.

Two export methods:

``ebs-direct`` (default)
    An instance gets one multi-volume snapshot set (CreateSnapshots; with
    ``stop_instance`` it is stopped first and started again right after); an
    AMI's snapshots or the given snapshot are used as they are. Each snapshot
    is read block by block through the EBS direct APIs (``aws_ebs``), many
    blocks in parallel, each checked against its SHA-256; unwritten blocks stay
    holes. One raw image per volume. Needs no bucket and no vmimport role.
``export-image``
    VM Import/Export (``aws_export_image``): ExportImage for an AMI,
    CreateInstanceExportTask for an instance, to ``bucket`` as VMDK, VHD or
    RAW, then a parallel ranged download from S3 (``aws_s3``), checksum checked.

Everything a run creates (snapshots, export tasks, S3 objects) is tagged or
prefixed with its run id and recorded in the export session's ledger the moment
it exists; the core (``providers/lifecycle.py``) removes it through ``remove``
(``cleanup.py``) after the download, or at once when the export fails, unless
``keep_cloud_artifacts`` is set.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ...errors import InvalidInputError
from ...models import DiskFormat, DiskSource, DiskType, ExportOptions, ExportResult, Resource, VmInfo
from ..contract import CliFlag, Provider, TransferDefaults, exactly_one
from ..session import ExportSession
from . import cleanup as aws_cleanup, export_image as aws_export_image, metadata as aws_metadata, snapshots as aws_snapshots
from .clients import AwsContext, make_context
from .credentials import AwsLogin
from .ebs import EbsSnapshotSource
from .metadata import GiB, Volume
from .s3 import S3ObjectSource

log = logging.getLogger(__name__)

NAME = "aws"

_REGION = re.compile(r"^[a-z]{2,4}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
_IDS = {"ami": re.compile(r"^ami-[0-9a-f]{8,17}$"), "snapshot": re.compile(r"^snap-[0-9a-f]{8,17}$")}


class AwsOptions(BaseModel):
    """An EC2 instance, an AMI or an EBS snapshot, and how to export it."""

    model_config = ConfigDict(extra="forbid")

    instance: str | None = Field(default=None, min_length=1, description="Instance id (i-...) or Name tag.")
    ami: str | None = Field(default=None, title="AMI", description="AMI id to export.")
    snapshot: str | None = Field(default=None, description="EBS snapshot id to export.")
    region: str = Field(min_length=1, description="AWS region of the source, e.g. eu-west-1.")
    export_method: Literal["ebs-direct", "export-image"] = Field(
        default="ebs-direct", description="ebs-direct reads snapshots block by block; export-image uses VM Export and S3."
    )
    stop_instance: bool = Field(
        default=False, description="Stop the instance before snapshotting it (started again right after)."
    )
    bucket: str | None = Field(default=None, description="S3 bucket for export-image, in the same region.")
    prefix: str = Field(default="hyperexport/", description="Key prefix of export-image objects; the run id is added.")
    disk_format: Literal["vmdk", "vhd", "raw"] | None = Field(
        default=None, description="export-image file format; default: ExportOptions.format, else vmdk."
    )
    role_name: str | None = Field(default=None, description="VM Import/Export service role; AWS's default is vmimport.")
    poll_seconds: float = Field(default=15.0, gt=0, le=600, description="Seconds between status checks of snapshots and tasks.")
    api_max_attempts: int = Field(
        default=10, title="API attempts", ge=1, le=30, description="Attempts per AWS call; throttling and 5xx are retried with adaptive backoff."
    )
    vm_name: str | None = Field(default=None, title="VM name", description="Name to record for the VM; default: the Name tag or id.")


SourceKind = Literal["instance", "ami", "snapshot"]


def _source(options: AwsOptions) -> tuple[SourceKind, str]:
    """The one source given (its kind and reference); refuse none or several."""
    named: tuple[tuple[SourceKind, str | None], ...] = (
        ("instance", options.instance), ("ami", options.ami), ("snapshot", options.snapshot)
    )
    return exactly_one(NAME, named, field="source.instance")


def _check(options: AwsOptions, export_options: ExportOptions) -> None:
    _source(options)
    if not _REGION.match(options.region):
        raise InvalidInputError(f"{options.region!r} is not an AWS region name; use one like us-east-1", field="source.region")
    for flag, pattern in _IDS.items():
        value = getattr(options, flag)
        if value and not pattern.match(value):
            raise InvalidInputError(
                f"{value!r} is not an AWS {flag} id (like {pattern.pattern[1:5]}0123456789abcdef0)", field=f"source.{flag}"
            )
    if options.stop_instance and not options.instance:
        raise InvalidInputError("stop_instance applies to an instance only", field="source.stop_instance")
    if options.export_method == "export-image":
        if options.snapshot:
            raise InvalidInputError(
                "export-image exports AMIs and instances, not snapshots; use the ebs-direct export method for a snapshot",
                field="source.export_method",
            )
        if not options.bucket:
            raise InvalidInputError("export-image needs an S3 bucket in the same region", field="source.bucket")
        fmt = _export_format(options, export_options)
        if fmt not in ("VMDK", "VHD", "RAW"):
            raise InvalidInputError(
                f"VM Export writes vmdk, vhd or raw, not {fmt.lower()}; set disk_format to vmdk", field="source.disk_format"
            )


def _describe(options: AwsOptions) -> str:
    kind, ref = _source(options)
    return f"aws {kind} {ref} in {options.region} via {options.export_method}"


def _context(options: AwsOptions, credentials: Any | None) -> AwsContext:
    return make_context(options.region, credentials, options.api_max_attempts)


def _export_format(options: AwsOptions, export_options: ExportOptions) -> str:
    if options.disk_format:
        return options.disk_format.upper()
    return (export_options.format.value if export_options.format else "vmdk").upper()


def _export(session: ExportSession[Any], options: AwsOptions, export_options: ExportOptions) -> ExportResult:
    ctx = _context(options, session.credentials)
    session.source = options.instance or options.ami or options.snapshot or ""
    if options.export_method == "ebs-direct":
        vm, disks = _export_ebs_direct(ctx, options, export_options, session)
    else:
        vm, disks = _export_image(ctx, options, export_options, session)
    if options.vm_name:
        vm = vm.model_copy(update={"vm_name": options.vm_name})
    return ExportResult(
        provider=NAME, export_method=options.export_method, vm=vm, disks=disks,
        metadata={"region": options.region, "source": session.source},
    )


def _file_stem(vm: VmInfo) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", vm.vm_name or vm.vm_id or "vm").strip("-") or "vm"


def _export_ebs_direct(ctx: AwsContext, options: AwsOptions, export_options: ExportOptions, session: ExportSession[Any]):
    timeout, interval = export_options.export_timeout_seconds, options.poll_seconds
    kind, ref = _source(options)
    if kind == "instance":
        instance = aws_metadata.find_instance(ctx, ref)
        vm = aws_metadata.instance_vm_info(ctx, instance)
        volumes = aws_metadata.instance_volumes(ctx, instance)
        session.source = instance["InstanceId"]
        volumes = aws_snapshots.snapshot_instance(
            ctx, instance, volumes, session, stop=options.stop_instance, timeout=timeout, interval=interval
        )
        created = True
    elif kind == "ami":
        image = aws_metadata.describe_image(ctx, ref)
        vm, volumes, created = aws_metadata.image_vm_info(ctx, image), aws_metadata.image_volumes(image), False
    else:
        snapshot = aws_metadata.describe_snapshot(ctx, ref)
        vm, created = aws_metadata.snapshot_vm_info(ctx, snapshot), False
        volumes = [Volume(device="", size_gib=int(snapshot["VolumeSize"]), volume_id=snapshot.get("VolumeId"),
                          snapshot_id=snapshot["SnapshotId"], root=True)]  # fmt: skip
    snapshot_ids: list[str] = []
    for volume in volumes:
        # snapshot_instance() made one for every volume; image_volumes() keeps only mappings with one.
        assert volume.snapshot_id is not None
        snapshot_ids.append(volume.snapshot_id)
    described = aws_snapshots.wait_completed(ctx, snapshot_ids, created=created, timeout=timeout, interval=interval)
    stem = _file_stem(vm)
    disks = []
    for i, (volume, snapshot_id) in enumerate(zip(volumes, snapshot_ids)):
        size = int(described[snapshot_id]["VolumeSize"]) * GiB
        disks.append(DiskSource(
            id=f"disk-{i}", location=f"ebs://{snapshot_id}", format=DiskFormat.raw, size_bytes=size,
            virtual_size_bytes=size, disk_type=DiskType.boot if volume.root else DiskType.data, boot_order_hint=i,
            label=volume.device or snapshot_id, file_name=f"{stem}-disk-{i}.raw",
        ))  # fmt: skip
    return vm, disks


def _export_image(ctx: AwsContext, options: AwsOptions, export_options: ExportOptions, session: ExportSession[Any]):
    fmt = _export_format(options, export_options)
    bucket = options.bucket or ""
    timeout, interval = export_options.export_timeout_seconds, options.poll_seconds
    prefix = aws_export_image.run_prefix(options.prefix, session.run_id)
    kind, ref = _source(options)
    if kind == "instance":
        instance = aws_metadata.find_instance(ctx, ref)
        vm = aws_metadata.instance_vm_info(ctx, instance)
        volumes = aws_metadata.instance_volumes(ctx, instance)
        reasons = aws_export_image.refusals(
            volumes, product_codes=instance.get("ProductCodes") or [], platform_details=instance.get("PlatformDetails"),
            nic_count=len(instance.get("NetworkInterfaces") or []),
        )  # fmt: skip
        aws_export_image.refuse_if_unexportable(f"instance {instance['InstanceId']}", reasons)
        aws_export_image.check_bucket(ctx, bucket)
        session.source = instance["InstanceId"]
        with aws_snapshots.stopped(ctx, instance, stop=options.stop_instance, timeout=timeout, interval=interval):
            key = aws_export_image.export_instance(
                ctx, instance["InstanceId"], bucket=bucket, prefix=prefix, fmt=fmt, session=session, timeout=timeout,
                interval=interval,
            )  # fmt: skip
    else:  # an AMI: _check refuses a snapshot for export-image
        image = aws_metadata.describe_image(ctx, ref)
        vm = aws_metadata.image_vm_info(ctx, image)
        volumes = aws_metadata.image_volumes(image)
        reasons = aws_export_image.refusals(
            volumes, product_codes=image.get("ProductCodes") or [], platform_details=image.get("PlatformDetails")
        )
        aws_export_image.refuse_if_unexportable(f"image {image['ImageId']}", reasons)
        aws_export_image.check_bucket(ctx, bucket)
        key = aws_export_image.export_image(
            ctx, image["ImageId"], bucket=bucket, prefix=prefix, fmt=fmt, role_name=options.role_name, session=session,
            timeout=timeout, interval=interval,
        )  # fmt: skip
    size = aws_export_image.object_size(ctx, bucket, key)
    extension = key.rsplit(".", 1)[-1] if "." in key else fmt.lower()
    disk = DiskSource(
        id="disk-0", location=f"s3://{bucket}/{key}", format=aws_export_image.disk_format(fmt), size_bytes=size,
        disk_type=DiskType.boot, boot_order_hint=0, label=volumes[0].device, file_name=f"{_file_stem(vm)}-disk-0.{extension}",
    )  # fmt: skip
    return vm, [disk]


def _open_disk(disk: DiskSource, options: AwsOptions, credentials: Any | None):
    ctx = _context(options, credentials)
    scheme, _, rest = disk.location.partition("://")
    if scheme == "ebs" and rest:
        return EbsSnapshotSource(ctx, rest)
    if scheme == "s3" and "/" in rest:
        bucket, _, key = rest.partition("/")
        return S3ObjectSource(ctx, bucket, key)
    raise InvalidInputError(f"aws provider cannot open {disk.location!r}: it reads ebs://snap-... and s3://bucket/key")


class AwsProvider(Provider[AwsOptions, Any]):
    """EC2 instances, AMIs and EBS snapshots. Credentials: an AwsLogin, a boto3.Session (prefect-aws's block), or
    None for boto3's default chain."""

    name = NAME
    title = "AWS EC2"
    options_type = AwsOptions
    credentials_type = AwsLogin
    extra = "aws"
    flags = (
        CliFlag(flag="--instance", option="instance", help="instance id (i-...) or Name tag (aws)"),
        CliFlag(flag="--ami", option="ami", help="AMI id to migrate (aws)"),
        CliFlag(flag="--snapshot", option="snapshot", help="EBS snapshot id to migrate (aws)"),
        CliFlag(flag="--region", option="region", help="AWS region of the source (aws)"),
        CliFlag(flag="--export-method", option="export_method", help="ebs-direct (default) or export-image (aws)"),
    )
    label_options = ("vm_name", "instance", "ami", "snapshot")
    cleanup_options = ("region", "bucket", "prefix")
    recommended_limit = 4  # the seeds' advice: 3-5 concurrent AWS exports
    # 64 reads in flight, as coldsnap does; an 8 MiB range is 16 EBS blocks, or one S3 ranged GET of the size
    # AWS recommends.
    transfer = TransferDefaults(connections=64, chunk_size=8 * 2**20)

    def check(self, options: AwsOptions, export: ExportOptions) -> None:
        _check(options, export)

    def describe(self, options: AwsOptions) -> str:
        return _describe(options)

    def export(self, session: ExportSession[Any], options: AwsOptions, export: ExportOptions) -> ExportResult:
        return _export(session, options, export)

    def open_disk(self, disk: DiskSource, options: AwsOptions, credentials: Any | None):
        return _open_disk(disk, options, credentials)

    def remove(self, run_id: str, resources: Sequence[Resource], options: AwsOptions, credentials: Any | None) -> list[Resource]:
        """Cancel the run's export tasks, then remove its images, snapshots and export objects (each only if it
        carries the run's tag or prefix)."""
        return aws_cleanup.remove(_context(options, credentials), run_id, resources) if resources else []

    def run_resources(self, run_id: str, options: AwsOptions, credentials: Any | None) -> list[Resource]:
        """The snapshots and images tagged with ``run_id`` and, when ``bucket`` is given, its export prefix."""
        prefix = f"{options.bucket}/{aws_export_image.run_prefix(options.prefix, run_id)}" if options.bucket else None
        return aws_cleanup.run_resources(_context(options, credentials), run_id, prefix)
