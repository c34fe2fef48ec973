"""The ``gcp`` provider: a Compute Engine instance (or one disk, or one snapshot) to one image per disk.

Google Cloud has no API that reads a persistent disk's bytes; this does what ``gcloud compute images export``
does, with the SDKs:

1. a snapshot of every disk of the instance, boot disk first, then by device index, all started before
   any is waited for and labelled with the run id (an existing snapshot is used as it is);
2. a temporary disk from each snapshot and one export worker (``worker.py``) that streams them to
   ``gs://BUCKET/PREFIX/RUN_ID/<disk>.<qcow2|raw>`` and signals through guest attributes with each
   object's crc32c; the worker and the temporary disks are deleted as soon as it is done;
3. each object downloaded with parallel ranged reads (``gcs.py``), its crc32c and md5 checked.

Everything a run creates is labelled or prefixed with its run id and recorded in the session's ledger the
moment it exists; the core removes the snapshots and objects through ``remove`` (``cleanup.py``) after the
download, or at once when the export fails, unless ``keep_cloud_artifacts`` is set.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ...errors import InvalidInputError, SourceNotFoundError
from ...models import DiskFormat, DiskSource, DiskType, ExportOptions, ExportResult, Resource, VmInfo
from ..contract import CliFlag, Provider, TransferDefaults
from ..session import ExportSession
from . import cleanup as gcp_cleanup, metadata as gcp_metadata, snapshots as gcp_snapshots, worker as gcp_worker
from .clients import GcpContext, make_context
from .credentials import GcpLogin
from .errors import translated
from .gcs import GcsObjectSource, object_metadata
from .metadata import GiB, MAC_NOTE, Disk
from .options import BUCKET, GcpOptions, check, export_format, source_of

NAME = "gcp"
_LOCATION = re.compile(r"^gs://([a-z0-9][a-z0-9_.-]{1,61}[a-z0-9])/([A-Za-z0-9_./-]{1,1024})$")


def _context(options: GcpOptions, credentials: Any | None) -> GcpContext:
    return make_context(options.project, options.zone, credentials)


def _file_stem(vm: VmInfo) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", vm.vm_name or vm.vm_id or "vm").strip("-.") or "vm"


def _source_disks(ctx: GcpContext, options: GcpOptions, session: ExportSession[Any]) -> tuple[VmInfo, list[Disk]]:
    kind, name = source_of(options)
    session.source = name
    if kind == "instance":
        instance = gcp_metadata.get_instance(ctx, name)
        disks = gcp_metadata.instance_disks(ctx, instance)
        return gcp_metadata.instance_vm_info(ctx, instance, gcp_metadata.get_disk(ctx, disks[0].name)), disks
    if kind == "disk":
        gcp_metadata.check_zone(ctx)
        disk = gcp_metadata.get_disk(ctx, name)
        vm = gcp_metadata.disk_vm_info(ctx, name, list(disk.licenses), {f.type_ for f in disk.guest_os_features})
        return vm, [Disk(name=name, size_gib=int(disk.size_gb), boot=True, device_index=0)]
    gcp_metadata.check_zone(ctx)
    snapshot = gcp_metadata.get_snapshot(ctx, name)
    vm = gcp_metadata.disk_vm_info(ctx, name, list(snapshot.licenses), {f.type_ for f in snapshot.guest_os_features})
    return vm, [Disk(name=name, size_gib=int(snapshot.disk_size_gb), boot=True, device_index=0, snapshot=name)]


def _check_bucket(ctx: GcpContext, bucket: str) -> None:
    from google.api_core import exceptions as gx

    try:
        with translated(f"reading bucket {bucket}", subject=f"bucket {bucket}"):
            ctx.storage().get_bucket(bucket)
    except SourceNotFoundError as error:
        if isinstance(error.__cause__, gx.NotFound):
            raise SourceNotFoundError(f"bucket {bucket} does not exist or is not visible to the credentials; create it "
                                      "first, in or near the zone's region", field="source.bucket") from None  # fmt: skip
        raise


def _export(session: ExportSession[Any], options: GcpOptions, export: ExportOptions) -> ExportResult:
    ctx = _context(options, session.credentials)
    fmt = export_format(options, export)
    bucket = options.bucket or ""
    timeout, interval = export.export_timeout_seconds, options.poll_seconds
    vm, disks = _source_disks(ctx, options, session)
    _check_bucket(ctx, bucket)
    if disks[0].snapshot is None:
        disks = gcp_snapshots.snapshot_disks(ctx, disks, session, guest_flush=options.guest_flush, timeout=timeout, interval=interval)
    # Recorded before the worker starts: what it writes before failing is removed with the rest.
    session.record("gcs-prefix", f"{bucket}/{gcp_cleanup.run_prefix(options.prefix, session.run_id)}", bucket)
    exported = gcp_worker.run_worker(ctx, options, disks, session, fmt=fmt, timeout=timeout)
    if options.vm_name:
        vm = vm.model_copy(update={"vm_name": options.vm_name})
    stem, sources = _file_stem(vm), []
    for i, item in enumerate(exported):
        name = item.step.object.removeprefix(f"gs://{bucket}/")
        blob = object_metadata(ctx, bucket, name)
        gcp_worker.check_crc(item, blob.crc32c)
        sources.append(DiskSource(
            id=f"disk-{i}", location=item.step.object, format=DiskFormat(fmt), size_bytes=int(blob.size or 0),
            virtual_size_bytes=item.disk.size_gib * GiB, disk_type=DiskType.boot if item.disk.boot else DiskType.data,
            boot_order_hint=i, label=item.disk.name, file_name=f"{stem}-disk-{i}.{fmt}",
        ))  # fmt: skip
    return ExportResult(
        provider=NAME, export_method="export-worker", vm=vm, disks=sources,
        metadata={"project": ctx.project, "zone": ctx.zone, "source": session.source, "bucket": bucket,
                  "object_prefix": gcp_cleanup.run_prefix(options.prefix, session.run_id), "nic_macs": MAC_NOTE},
    )  # fmt: skip


def _open_disk(disk: DiskSource, options: GcpOptions, credentials: Any | None) -> GcsObjectSource:
    match = _LOCATION.match(disk.location)
    if not match or ".." in match.group(2).split("/"):
        raise InvalidInputError(f"the gcp provider cannot open {disk.location!r}: it reads gs://bucket/object")
    return GcsObjectSource(_context(options, credentials), match.group(1), match.group(2))


class GcpProvider(Provider[GcpOptions, GcpLogin]):
    """Compute Engine instances, persistent disks and snapshots. Credentials: a GcpLogin, or None for
    google-auth's default chain."""

    name = NAME
    title = "Google Compute Engine"
    options_type = GcpOptions
    credentials_type = GcpLogin
    extra = "gcp"
    flags = (
        CliFlag(flag="--instance", option="instance", help="instance name (gcp)"),
        CliFlag(flag="--disk", option="disk", help="one persistent disk's name instead of an instance (gcp)"),
        CliFlag(flag="--snapshot", option="snapshot", help="one snapshot's name instead of an instance (gcp)"),
        CliFlag(flag="--zone", option="zone", help="zone of the instance or disk (gcp)"),
        CliFlag(flag="--project", option="project", help="project id; default: the credentials block's (gcp)"),
    )
    label_options = ("vm_name", "instance", "disk", "snapshot")
    cleanup_options = ("zone", "project", "bucket", "prefix")
    recommended_limit = 3  # each export runs a worker VM: CPU and in-use-address quotas are small by default
    # Cloud Storage serves each ranged GET at tens of MB/s: 16 at once of 16 MiB each fill a fast link.
    transfer = TransferDefaults(connections=16, chunk_size=16 * 2**20)

    def check(self, options: GcpOptions, export: ExportOptions) -> None:
        check(options, export)

    def describe(self, options: GcpOptions) -> str:
        kind, name = source_of(options)
        where = f"{options.project}/{options.zone}" if options.project else options.zone
        return f"gcp {kind} {name} in {where} via an export worker to gs://{options.bucket}"

    def export(self, session: ExportSession[Any], options: GcpOptions, export: ExportOptions) -> ExportResult:
        return _export(session, options, export)

    def open_disk(self, disk: DiskSource, options: GcpOptions, credentials: Any | None) -> GcsObjectSource:
        return _open_disk(disk, options, credentials)

    def remove(self, run_id: str, resources: Sequence[Resource], options: GcpOptions, credentials: Any | None) -> list[Resource]:
        """Delete the run's worker, temporary disks, snapshots and export objects (each only if it carries the run's
        label or prefix)."""
        if not resources:
            return []
        return gcp_cleanup.remove(_context(options, credentials), run_id, resources, interval=options.poll_seconds)

    def run_resources(self, run_id: str, options: GcpOptions, credentials: Any | None) -> list[Resource]:
        """The instances, disks and snapshots labelled with ``run_id`` and, with ``bucket``, its export prefix."""
        bucket = options.bucket if options.bucket and BUCKET.match(options.bucket) else None
        return gcp_cleanup.run_resources(_context(options, credentials), run_id, bucket, options.prefix)
