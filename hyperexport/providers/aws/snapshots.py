"""Snapshots for the ebs-direct method: a crash-consistent set of an instance's volumes, and waiting for them.

CreateSnapshots snapshots every EBS volume of an instance at the same point
in time, so a multi-disk guest (LVM over several volumes, a database with
its log elsewhere) stays consistent across disks. With ``stop`` the
instance is stopped first and started again as soon as the set is taken:
the snapshots are point-in-time, they need not complete before the restart.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from ...errors import (
    HyperExportError,
    InvalidInputError,
    SourceNotFoundError,
    TransferError,
)
from ..session import ExportSession
from .clients import AwsContext, tag_specifications
from .errors import translated
from .metadata import Volume
from ..polling import wait_for

log = logging.getLogger(__name__)


def wait_completed(
    ctx: AwsContext, snapshot_ids: list[str], *, created: bool, timeout: float, interval: float
) -> dict[str, dict[str, Any]]:
    """The snapshots' descriptions once all are ``completed``; raises if one is in ``error``.

    ``created``: the run made them (a failure is worth a new attempt) rather
    than the user naming them (a failed snapshot will never hold data).
    """
    ec2 = ctx.client("ec2")
    what = f"snapshot {', '.join(snapshot_ids)}"

    def check() -> dict[str, dict[str, Any]] | None:
        with translated(f"describing {what}", service="ec2", region=ctx.region, subject=what):
            found = {s["SnapshotId"]: s for s in ec2.describe_snapshots(SnapshotIds=snapshot_ids).get("Snapshots", [])}
        missing = [i for i in snapshot_ids if i not in found]
        if missing:
            raise SourceNotFoundError(
                f"snapshot {', '.join(missing)} was not found in region {ctx.region}; check the region", field="source.region"
            )
        for snap in found.values():
            if snap.get("State") == "error":
                raise _snapshot_failed(snap, created)
        pending = {i: s.get("Progress", "?") for i, s in found.items() if s.get("State") != "completed"}
        if not pending:
            return found
        log.info("waiting for snapshots: %s", ", ".join(f"{i} {p}" for i, p in pending.items()))
        return None

    return wait_for(check, what=f"the completion of {what}", timeout=timeout, interval=interval)


def _snapshot_failed(snap: dict[str, Any], created: bool) -> HyperExportError:
    detail = snap.get("StateMessage") or "AWS gave no reason"
    source = f" of volume {snap['VolumeId']}" if snap.get("VolumeId") else ""
    if created:
        return TransferError(
            f"AWS could not complete snapshot {snap['SnapshotId']}{source}: it is in state error ({detail}). "
            "It will be removed; run again to take a new snapshot set."
        )
    return InvalidInputError(
        f"snapshot {snap['SnapshotId']}{source} is in state error ({detail}) and holds no usable data. "
        "Choose another snapshot or take a new one."
    )


def _wait_state(ctx: AwsContext, instance_id: str, state: str, *, timeout: float, interval: float) -> None:
    ec2 = ctx.client("ec2")

    def check() -> bool | None:
        with translated(f"describing instance {instance_id}", service="ec2", region=ctx.region):
            reservations = ec2.describe_instances(InstanceIds=[instance_id]).get("Reservations", [])
        current = reservations[0]["Instances"][0]["State"]["Name"] if reservations else None
        return True if current == state else None

    wait_for(check, what=f"instance {instance_id} to be {state}", timeout=timeout, interval=interval)


@contextmanager
def stopped(ctx: AwsContext, instance: dict[str, Any], *, stop: bool, timeout: float, interval: float) -> Iterator[None]:
    """Stop a running instance for the block, then start it again (only if this run stopped it)."""
    instance_id = instance["InstanceId"]
    if not stop or instance.get("State", {}).get("Name") != "running":
        yield
        return
    ec2 = ctx.client("ec2")
    log.info("stopping instance %s for consistent snapshots", instance_id)
    with translated(f"stopping instance {instance_id}", service="ec2", region=ctx.region, subject=f"instance {instance_id}"):
        ec2.stop_instances(InstanceIds=[instance_id])
    try:
        _wait_state(ctx, instance_id, "stopped", timeout=timeout, interval=interval)
        yield
    finally:
        log.info("starting instance %s again", instance_id)
        try:
            with translated(f"starting instance {instance_id} again", service="ec2", region=ctx.region):
                ec2.start_instances(InstanceIds=[instance_id])
        except HyperExportError as error:
            log.error("%s; start instance %s by hand", error, instance_id)
            raise


def snapshot_instance(
    ctx: AwsContext, instance: dict[str, Any], volumes: list[Volume], session: ExportSession, *, stop: bool, timeout: float,
    interval: float,
) -> list[Volume]:  # fmt: skip
    """Take one multi-volume snapshot set of ``instance``; the volumes come back with their snapshot ids."""
    instance_id = instance["InstanceId"]
    with stopped(ctx, instance, stop=stop, timeout=timeout, interval=interval):
        with translated(
            f"creating the snapshot set of instance {instance_id}", service="ec2", region=ctx.region,
            subject=f"instance {instance_id}",
        ):  # fmt: skip
            answer = ctx.client("ec2").create_snapshots(
                InstanceSpecification={"InstanceId": instance_id, "ExcludeBootVolume": False},
                Description=f"hyperexport run {session.run_id} of {instance_id}",
                TagSpecifications=tag_specifications("snapshot", session),
            )
        by_volume = {s["VolumeId"]: s["SnapshotId"] for s in answer.get("Snapshots", [])}
        for snapshot_id in by_volume.values():
            session.record("snapshot", snapshot_id, ctx.region)
    log.info("snapshot set of %s: %s", instance_id, ", ".join(f"{v}->{s}" for v, s in by_volume.items()))
    missing = [v.volume_id for v in volumes if v.volume_id not in by_volume]
    if missing:
        raise TransferError(f"CreateSnapshots of {instance_id} returned no snapshot for {', '.join(map(str, missing))}; run again")
    return [replace(v, snapshot_id=by_volume[v.volume_id]) for v in volumes]
