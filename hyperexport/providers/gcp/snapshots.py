"""One snapshot of every disk, all started before any is waited for (so that they are close in time)."""

from __future__ import annotations

import hashlib
from typing import Any

from ...errors import TransferError
from ...models import Resource
from ..polling import wait_for
from ..session import ExportSession
from . import operations
from .clients import GcpContext, run_labels
from .errors import translated
from .metadata import Disk


def resource_name(run_id: str, role: str) -> str:
    """A Compute Engine name of this run's ``role`` (snap-0, disk-1, worker): short, valid, the same on a retry."""
    return f"hx-{hashlib.sha256(run_id.encode()).hexdigest()[:12]}-{role}"


def record(session: ExportSession[Any], ctx: GcpContext, kind: str, name: str) -> Resource:
    return session.record(kind, name, ctx.zone if kind != "snapshot" else ctx.project)


def snapshot_disks(ctx: GcpContext, disks: list[Disk], session: ExportSession[Any], *, guest_flush: bool,
                   timeout: float, interval: float) -> list[Disk]:  # fmt: skip
    """Snapshot each disk (labelled with the run id); returns the disks with their snapshot's name, once READY."""
    started = []
    for disk in disks:
        name = resource_name(session.run_id, f"snap-{disk.device_index}")
        body = {"name": name, "labels": run_labels(session.run_id, session.source),
                "description": f"hyperexport run {session.run_id}: disk {disk.name}"}  # fmt: skip
        # Recorded before it is asked for: an insert whose answer is lost is still rolled back.
        resource = record(session, ctx, "snapshot", name)
        operation = operations.insert_own(
            ctx, ctx.compute("Disks").create_snapshot_unary, action=f"snapshotting disk {disk.name}", subject=f"disk {disk.name}",
            fetch=lambda name=name: ctx.compute("Snapshots").get(project=ctx.project, snapshot=name), run_id=session.run_id,
            release=lambda resource=resource: session.forget(resource),
            request={"project": ctx.project, "zone": ctx.zone, "disk": disk.name, "guest_flush": guest_flush,
                     "snapshot_resource": body},
        )  # fmt: skip
        started.append((disk._replace(snapshot=name), operation))
    for disk, operation in started:
        if operation is not None:
            operations.wait(ctx, operation, action=f"snapshotting disk {disk.name}", subject=f"disk {disk.name}",
                            timeout=timeout, interval=interval)  # fmt: skip
    for disk, _ in started:
        wait_ready(ctx, disk.snapshot or "", timeout=timeout, interval=interval)
    return [disk for disk, _ in started]


def wait_ready(ctx: GcpContext, name: str, *, timeout: float, interval: float) -> Any:
    def ready() -> Any | None:
        with translated(f"reading snapshot {name}", subject=f"snapshot {name}"):
            snapshot = ctx.compute("Snapshots").get(project=ctx.project, snapshot=name)
        if snapshot.status in ("FAILED", "DELETING"):
            raise TransferError(f"snapshot {name} is {snapshot.status}; run the migration again")
        return snapshot if snapshot.status == "READY" else None

    return wait_for(ready, what=f"snapshot {name}", timeout=timeout, interval=interval)
