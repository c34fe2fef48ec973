"""Snapshots of managed disks: create one per disk (tagged with the run id), read grants, revoke, delete.

Every call is a long-running operation of Resource Manager; azure-core's poller follows its
Azure-AsyncOperation (or Location) header and waits as Retry-After says (``poll_seconds`` when it says
nothing), and ``polling.wait_for`` bounds the wait and stops it when the run is cancelled.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from typing import Any
from urllib.parse import urlsplit

from ... import cancel
from ...errors import IntegrityError, InvalidInputError, SourceNotFoundError, TransferError
from ..polling import wait_for
from ..session import RUN_TAG, ExportSession
from .clients import AzureContext
from .credentials import sdk_import
from .errors import translated
from .metadata import ManagedDisk
from .options import ResourceId, parse_resource_id

log = logging.getLogger(__name__)

#: Disk SKUs that Azure snapshots only incrementally, with a background copy to wait for.
INCREMENTAL_ONLY = {"UltraSSD_LRS": "an Ultra Disk", "PremiumV2_LRS": "a Premium SSD v2 disk"}


def refuse_unsnapshottable(disk: ManagedDisk, incremental: bool) -> None:
    kind = INCREMENTAL_ONLY.get(disk.sku or "")
    if kind and not incremental:
        raise InvalidInputError(
            f"disk {disk.name} is {kind} ({disk.sku}): Azure takes only incremental snapshots of it, and reads them "
            "only once their background copy is complete. Run again with incremental=true (the export then waits "
            "for the copy), or snapshot the disk yourself and give its snapshot_id.",
            field="source.incremental",
        )


def snapshot_name(run_id: str, disk: ManagedDisk) -> str:
    """Unique per run and disk (the run id and the disk's place come first, the disk's name after them)."""
    run = re.sub(r"[^A-Za-z0-9-]", "-", run_id)[:40]
    place = "os" if disk.lun is None else f"lun{disk.lun}"
    return f"hx-{run}-{place}-{re.sub(r'[^A-Za-z0-9_.-]', '-', disk.name)}"[:80].rstrip(".-")


def _wait(poller: Any, what: str, timeout: float, *, cancellable: bool = True) -> Any:
    """The operation's result once azure-core's poller (its own thread) has it. A cancelled run stops waiting,
    except for the revokes and deletes of its clean-up (``cancellable=False``), which must finish."""
    deadline = time.monotonic() + timeout
    with translated(what):
        while not poller.done():
            if cancellable:
                cancel.raise_if_cancelled()
            if time.monotonic() >= deadline:
                raise TransferError(f"{what} did not finish within {timeout:.0f}s; give it more time with a larger export_timeout_seconds")
            poller.wait(min(0.2, max(0.0, deadline - time.monotonic())))
        return poller.result()


def create(
    ctx: AzureContext, disk: ManagedDisk, session: ExportSession[Any], *, incremental: bool, timeout: float, interval: float
) -> str:
    """Snapshot ``disk`` into its own resource group. Its id, recorded before the PUT is sent: Azure may create
    the snapshot and still fail the call (the clean-up takes a snapshot that does not exist as removed)."""
    ref = parse_resource_id(disk.disk_id, "disks", "source.disk_id")
    name = snapshot_name(session.run_id, disk)
    models = sdk_import("azure.mgmt.compute.models")
    body = models.Snapshot(
        location=disk.location, tags=session.tags(), incremental=incremental,
        creation_data=models.CreationData(create_option="Copy", source_resource_id=disk.disk_id),
    )
    what = f"creating snapshot {name} of disk {disk.name}"
    snapshot_id = f"/subscriptions/{ctx.subscription}/resourceGroups/{ref.resource_group}/providers/Microsoft.Compute/snapshots/{name}"
    session.record("snapshot", snapshot_id, disk.location)
    with translated(what, subject=f"disk {disk.name}"):
        poller = ctx.compute.snapshots.begin_create_or_update(ref.resource_group, name, body, polling_interval=interval)
    snapshot = _wait(poller, what, timeout)
    if incremental:
        _wait_copied(ctx, parse_resource_id(snapshot_id, "snapshots", "source.snapshot_id"), snapshot, timeout, interval)
    return snapshot_id


def _wait_copied(ctx: AzureContext, ref: ResourceId, snapshot: Any, timeout: float, interval: float) -> None:
    """An incremental snapshot is readable once its background copy is at 100 %."""

    def check() -> bool | None:
        current = get(ctx, ref)
        percent = current.completion_percent
        return True if percent is None or percent >= 100 else None

    if snapshot.completion_percent is not None and snapshot.completion_percent < 100:
        wait_for(check, what=f"the background copy of snapshot {ref.name}", timeout=timeout, interval=interval)


def get(ctx: AzureContext, ref: ResourceId) -> Any:
    with translated(f"reading snapshot {ref.name} in resource group {ref.resource_group}", subject=f"snapshot {ref.name}"):
        return ctx.compute.snapshots.get(ref.resource_group, ref.name)


def grant(ctx: AzureContext, ref: ResourceId, seconds: int, *, timeout: float = 600, interval: float = 2.0) -> str:
    """A read SAS URL of the snapshot, valid ``seconds``."""
    what = f"granting read access to snapshot {ref.name}"
    models = sdk_import("azure.mgmt.compute.models")
    with translated(what, subject=f"snapshot {ref.name}"):
        poller = ctx.compute.snapshots.begin_grant_access(
            ref.resource_group, ref.name, models.GrantAccessData(access="Read", duration_in_seconds=seconds),
            polling_interval=interval,
        )
    access = _wait(poller, what, timeout)
    sas = getattr(access, "access_sas", None)
    if not sas or not str(sas).startswith(("https://", "http://")):
        raise SourceNotFoundError(f"{what}: Azure answered without a SAS URL; run again")
    return _over_https(str(sas), what)


def _over_https(sas: str, what: str) -> str:
    """The SAS URL, unless it would carry its signature in clear: plain http only to a loopback host (Azurite)."""
    host = urlsplit(sas).hostname or ""
    if sas.startswith("http://") and not _loopback(host):
        raise IntegrityError(
            f"{what}: Azure answered a SAS URL over plain http (host {host}); refused, its signature would travel in "
            "clear. Check the storage endpoint of the cloud and any proxy rewriting the answer."
        )
    return sas


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def revoke(ctx: AzureContext, ref: ResourceId, *, timeout: float = 600, interval: float = 2.0) -> None:
    what = f"revoking read access to snapshot {ref.name}"
    with translated(what, subject=f"snapshot {ref.name}"):
        poller = ctx.compute.snapshots.begin_revoke_access(ref.resource_group, ref.name, polling_interval=interval)
    _wait(poller, what, timeout, cancellable=False)


def delete(ctx: AzureContext, ref: ResourceId, *, timeout: float = 600, interval: float = 2.0) -> None:
    what = f"deleting snapshot {ref.name}"
    with translated(what, subject=f"snapshot {ref.name}"):
        poller = ctx.compute.snapshots.begin_delete(ref.resource_group, ref.name, polling_interval=interval)
    _wait(poller, what, timeout, cancellable=False)


def tagged(ctx: AzureContext, run_id: str) -> list[Any]:
    """The subscription's snapshots that carry the run's tag."""
    with translated(f"finding the snapshots of run {run_id}"):
        return [s for s in ctx.compute.snapshots.list() if (s.tags or {}).get(RUN_TAG) == run_id]
