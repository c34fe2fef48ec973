"""The ``azure`` provider: a VM's managed disks (or one disk, or one snapshot) to one raw image per disk.

For each managed disk, OS disk first and then data disks by LUN, the export takes a snapshot tagged with the
run id (``snapshots.py``; ``incremental`` where asked, and for Ultra and Premium SSD v2 disks, which allow
nothing else) and records it the moment it exists. The download (``pageblob.py``) obtains a read SAS grant on
the snapshot, lists its page ranges and reads only those, in parallel ranged GETs with a Content-MD5 per
range, then revokes the grant; the core's clean-up deletes the snapshots (``cleanup.py``) unless
``keep_cloud_artifacts``.

A managed disk is a fixed VHD. The staged file is its data without the 512-byte footer: a raw image of the
disk's exact size, checked against the footer's current size and against the disk size Resource Manager
reports (qemu's vpc driver would read the size from the CHS geometry for unknown creators).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from ...errors import InvalidInputError
from ...models import DiskFormat, DiskSource, DiskType, ExportOptions, ExportResult, Resource, VmInfo
from ..contract import CliFlag, Provider, TransferDefaults
from ..session import ExportSession
from . import cleanup as azure_cleanup, metadata, options as azure_options, snapshots
from .clients import AzureContext, make_context
from .credentials import AzureLogin, sdk_import
from .options import AzureOptions, parse_resource_id
from .pageblob import MD5_LIMIT, PageBlobSource

log = logging.getLogger(__name__)

NAME = "azure"
SCHEME = "azure-snapshot://"


def _context(credentials: Any) -> AzureContext:
    for module in ("azure.identity", "azure.mgmt.compute", "azure.mgmt.network", "azure.storage.blob"):
        sdk_import(module)
    return make_context(credentials)


def _file_stem(vm: VmInfo) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", vm.vm_name or "vm").strip("-.") or "vm"


def _disk_source(index: int, snapshot_id: str, size: int, lun: int | None, label: str, stem: str) -> DiskSource:
    return DiskSource(
        id=f"disk-{index}", location=SCHEME + snapshot_id.lstrip("/"), format=DiskFormat.raw, size_bytes=size,
        virtual_size_bytes=size, disk_type=DiskType.boot if lun is None else DiskType.data, boot_order_hint=index,
        label=label, file_name=f"{stem}-disk-{index}.raw",
    )


def _export(session: ExportSession[Any], options: AzureOptions, export: ExportOptions) -> ExportResult:
    ctx = _context(session.credentials)
    kind, ref = azure_options.source(options)
    timeout, interval = export.export_timeout_seconds, options.poll_seconds
    if kind == "snapshot":
        snap_ref = parse_resource_id(ref, "snapshots", "source.snapshot_id")
        snapshot = snapshots.get(ctx, snap_ref)
        vm = metadata.disk_vm_info(snapshot)
        size = metadata.disk_size(snapshot)
        stem = _file_stem(vm.model_copy(update={"vm_name": options.vm_name or vm.vm_name}))
        disks = [_disk_source(0, snapshot.id or ref, size, None, snapshot.name, stem)]
        session.source = snapshot.id or ref
    else:
        if kind == "vm":
            assert options.resource_group is not None  # check() demands it
            found = metadata.get_vm(ctx, options.resource_group, ref)
            managed = metadata.vm_disks(ctx, found)
            vm = metadata.vm_info(ctx, found, metadata.get_disk(ctx, managed[0].disk_id))
            session.source = found.id or ref
        else:
            managed = [metadata.managed_disk(ctx, ref, None)]
            vm = metadata.disk_vm_info(metadata.get_disk(ctx, ref))
            session.source = managed[0].disk_id
        for disk in managed:  # before any snapshot: refuse what cannot be read at all
            snapshots.refuse_unsnapshottable(disk, options.incremental)
        stem = _file_stem(vm.model_copy(update={"vm_name": options.vm_name or vm.vm_name}))
        disks = []
        for index, disk in enumerate(managed):
            snapshot_id = snapshots.create(ctx, disk, session, incremental=options.incremental or disk.sku in snapshots.INCREMENTAL_ONLY,
                                           timeout=timeout, interval=interval)  # fmt: skip
            label = disk.name if disk.lun is None else f"{disk.name} (LUN {disk.lun})"
            disks.append(_disk_source(index, snapshot_id, disk.size_bytes, disk.lun, label, stem))
    if options.vm_name:
        vm = vm.model_copy(update={"vm_name": options.vm_name})
    return ExportResult(
        provider=NAME, export_method="snapshot-sas", vm=vm, disks=disks,
        metadata={"source": session.source, "subscription": ctx.subscription},
    )


def _open_disk(disk: DiskSource, options: AzureOptions, credentials: Any) -> PageBlobSource:
    if not disk.location.startswith(SCHEME):
        raise InvalidInputError(f"the azure provider cannot open {disk.location!r}: it reads {SCHEME}/subscriptions/…/snapshots/NAME")
    ref = parse_resource_id("/" + disk.location.removeprefix(SCHEME), "snapshots", "source.snapshot_id")
    return PageBlobSource(_context(credentials), ref, disk_size=disk.virtual_size_bytes, grant_seconds=options.grant_seconds,
                          poll_seconds=options.poll_seconds)


class AzureProvider(Provider[AzureOptions, AzureLogin]):
    """Azure VMs, managed disks and snapshots. Credentials: an AzureLogin (the Azure service-principal block)."""

    name = NAME
    title = "Azure VMs"
    options_type = AzureOptions
    credentials_type = AzureLogin
    extra = "azure"
    flags = (
        CliFlag(flag="--vm", option="vm", help="VM name (azure; with --resource-group)"),
        CliFlag(flag="--resource-group", option="resource_group", help="resource group of the VM (azure)"),
        CliFlag(flag="--disk-id", option="disk_id", help="managed disk id to migrate (azure)"),
        CliFlag(flag="--snapshot-id", option="snapshot_id", help="snapshot id to migrate (azure)"),
        CliFlag(flag="--incremental", option="incremental", help="take incremental snapshots: true or false (azure)"),
    )
    label_options = ("vm_name", "vm", "disk_id", "snapshot_id")
    cleanup_options = ()
    recommended_limit = 4
    # Azure serves one blob at about 60 MiB/s and 500 requests/s: 16 ranges of 4 MiB in flight reach that, and
    # 4 MiB is the longest range Azure gives a Content-MD5 for.
    transfer = TransferDefaults(connections=16, chunk_size=MD5_LIMIT)

    def check(self, options: AzureOptions, export: ExportOptions) -> None:
        azure_options.check(options)

    def describe(self, options: AzureOptions) -> str:
        kind, ref = azure_options.source(options)
        where = f" in resource group {options.resource_group}" if kind == "vm" else ""
        return f"azure {kind} {ref}{where} via snapshot-sas"

    def export(self, session: ExportSession[AzureLogin], options: AzureOptions, export: ExportOptions) -> ExportResult:
        return _export(session, options, export)

    def open_disk(self, disk: DiskSource, options: AzureOptions, credentials: AzureLogin | None) -> PageBlobSource:
        return _open_disk(disk, options, credentials)

    def remove(self, run_id: str, resources: Sequence[Resource], options: AzureOptions, credentials: AzureLogin | None) -> list[Resource]:
        """Revoke the grants of the run's snapshots and delete them (each only if it carries the run's tag)."""
        return azure_cleanup.remove(_context(credentials), run_id, resources, interval=options.poll_seconds) if resources else []

    def run_resources(self, run_id: str, options: AzureOptions, credentials: AzureLogin | None) -> list[Resource]:
        return azure_cleanup.run_resources(_context(credentials), run_id)
