"""The export worker, as ``gcloud compute images export`` runs it: a temporary disk from each snapshot, one
small instance that streams them to Cloud Storage, its completion signal, and its removal.

The worker has no external IP unless asked, its disks attached read-only, the run's labels, and a maximum
run duration after which Compute Engine deletes it by itself, its temporary disks with it (auto-deleted): a worker outlives neither its timeout nor a
hyperexport that died. It and its temporary disks are deleted as soon as it is done (or failed, or late),
whatever ``keep_cloud_artifacts`` says: they bill by the minute and hold nothing of value.
"""

from __future__ import annotations

import logging
import re
from typing import Any, NamedTuple

from ...errors import HyperExportError, IntegrityError, SourceNotFoundError
from ...models import Resource
from ..polling import wait_for
from ..session import ExportSession
from . import operations
from .clients import GcpContext, run_labels
from .errors import WorkerFailedError, translated
from .metadata import Disk
from .options import GcpOptions, check_worker_image
from .snapshots import record, resource_name
from .startup_script import DONE, NAMESPACE, PLAN_KEY, SCRIPT, STATUS_KEY, ExportStep, crc_key, plan_json

log = logging.getLogger(__name__)

SERIAL_TAIL_LINES = 20
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]|\x1b\[[0-9;?]*[A-Za-z]")
_SCOPES = ["https://www.googleapis.com/auth/devstorage.read_write"]


class Exported(NamedTuple):
    disk: Disk
    step: ExportStep
    crc32c: str  # base64, as Cloud Storage and the worker give it


def object_name(prefix: str, run_id: str, disk: Disk, fmt: str) -> str:
    return f"{prefix}{run_id}/{disk.name}.{fmt}"


def run_worker(ctx: GcpContext, options: GcpOptions, disks: list[Disk], session: ExportSession[Any], *, fmt: str,
               timeout: float) -> list[Exported]:  # fmt: skip
    """Export every disk (each with its snapshot) through one worker; returns each object's name and crc32c."""
    interval = options.poll_seconds
    created: list[Resource] = []
    try:
        temporaries = [_temporary_disk(ctx, disk, session, created, timeout=timeout, interval=interval) for disk in disks]
        steps = [
            ExportStep(device=f"export-{i}", object=f"gs://{options.bucket}/{object_name(options.prefix, session.run_id, d, fmt)}",
                       format=fmt)  # type: ignore[arg-type]
            for i, d in enumerate(disks)
        ]  # fmt: skip
        worker = _insert_worker(ctx, options, temporaries, steps, disks, session, created, timeout=timeout)
        values = _wait_for_signal(ctx, worker, steps, timeout=timeout, interval=interval)
        return [Exported(disk, step, values[crc_key(step.device)]) for disk, step in zip(disks, steps)]
    finally:
        _remove_now(ctx, session, created, interval=interval)


def _temporary_disk(ctx: GcpContext, disk: Disk, session: ExportSession[Any], created: list[Resource], *,
                    timeout: float, interval: float) -> str:  # fmt: skip
    name = resource_name(session.run_id, f"disk-{disk.device_index}")
    body = {
        "name": name, "labels": run_labels(session.run_id, session.source),
        "source_snapshot": f"projects/{ctx.project}/global/snapshots/{disk.snapshot}",
        "type_": f"projects/{ctx.project}/zones/{ctx.zone}/diskTypes/pd-balanced",
        "description": f"hyperexport run {session.run_id}: temporary copy of disk {disk.name}",
    }  # fmt: skip
    return _create_own(ctx, session, created, "disk", name, body, action=f"creating the temporary disk {name}",
                       timeout=timeout, interval=interval)  # fmt: skip


def _create_own(ctx: GcpContext, session: ExportSession[Any], created: list[Resource], kind: str, name: str,
                body: dict[str, Any], *, action: str, timeout: float, interval: float) -> str:  # fmt: skip
    """Insert a disk or an instance of this run: recorded before the insert (a lost answer is still rolled
    back), one of ours found already there adopted (a retried insert), and waited for."""
    collection = {"disk": "Disks", "instance": "Instances"}[kind]
    resource = record(session, ctx, kind, name)
    created.append(resource)
    operation = operations.insert_own(
        ctx, ctx.compute(collection).insert_unary, action=action, subject=f"{kind} {name}",
        fetch=lambda: ctx.compute(collection).get(project=ctx.project, zone=ctx.zone, **{kind: name}),
        run_id=session.run_id, release=lambda: _release(session, created, resource), project=ctx.project,
        zone=ctx.zone, **{f"{kind}_resource": body},
    )  # fmt: skip
    if operation is not None:
        operations.wait(ctx, operation, action=action, timeout=timeout, interval=interval)
    return name


def _release(session: ExportSession[Any], created: list[Resource], resource: Resource) -> None:
    created.remove(resource)
    session.forget(resource)


def worker_image(ctx: GcpContext, options: GcpOptions) -> str:
    check_worker_image(options.worker_image, ctx.project)
    _, project, _, _, *rest = options.worker_image.split("/")
    images = ctx.compute("Images")
    with translated(f"reading the worker image {options.worker_image}", subject=f"image {options.worker_image}"):
        if rest[0] == "family":
            image = images.get_from_family(project=project, family=rest[1])
        else:
            image = images.get(project=project, image=rest[0])
    return image.self_link or options.worker_image


def _insert_worker(ctx: GcpContext, options: GcpOptions, temporaries: list[str], steps: list[ExportStep], disks: list[Disk],
                   session: ExportSession[Any], created: list[Resource], *, timeout: float) -> str:  # fmt: skip
    name = resource_name(session.run_id, "worker")
    scratch = max(d.size_gib for d in disks) if any(s.format == "qcow2" for s in steps) else 0
    nic: dict[str, Any] = {"network": options.network}
    if options.subnetwork:
        nic["subnetwork"] = options.subnetwork
    if options.external_ip:
        nic["access_configs"] = [{"name": "External NAT", "type_": "ONE_TO_ONE_NAT"}]
    body = {
        "name": name, "labels": run_labels(session.run_id, session.source),
        "description": f"hyperexport run {session.run_id}: export worker",
        "machine_type": f"zones/{ctx.zone}/machineTypes/{options.machine_type}",
        "disks": [
            {"boot": True, "auto_delete": True,
             "initialize_params": {"source_image": worker_image(ctx, options), "disk_size_gb": 10 + scratch}},
            *({"source": f"projects/{ctx.project}/zones/{ctx.zone}/disks/{t}", "mode": "READ_ONLY", "device_name": s.device,
               "auto_delete": True} for t, s in zip(temporaries, steps)),
        ],
        "network_interfaces": [nic],
        "metadata": {"items": [
            {"key": "startup-script", "value": SCRIPT}, {"key": PLAN_KEY, "value": plan_json(steps)},
            {"key": "enable-guest-attributes", "value": "TRUE"},
        ]},
        "service_accounts": [{"email": "default", "scopes": _SCOPES}],
        "scheduling": {"max_run_duration": {"seconds": int(timeout) + 300}, "instance_termination_action": "DELETE"},
    }  # fmt: skip
    return _create_own(ctx, session, created, "instance", name, body, action=f"starting the export worker {name}",
                       timeout=timeout, interval=options.poll_seconds)  # fmt: skip


def _attributes(ctx: GcpContext, worker: str) -> dict[str, str] | None:
    """The worker's hyperexport guest attributes; None before it wrote any."""
    try:
        with translated(f"reading the guest attributes of the export worker {worker}"):
            answer = ctx.compute("Instances").get_guest_attributes(
                request={"project": ctx.project, "zone": ctx.zone, "instance": worker, "query_path": f"{NAMESPACE}/"}
            )
    except SourceNotFoundError:
        return None
    return {item.key: item.value for item in answer.query_value.items if item.namespace == NAMESPACE}


def _wait_for_signal(ctx: GcpContext, worker: str, steps: list[ExportStep], *, timeout: float, interval: float) -> dict[str, str]:
    def signalled() -> dict[str, str] | None:
        values = _attributes(ctx, worker)
        status = (values or {}).get(STATUS_KEY)
        if status is None:
            _check_running(ctx, worker)
            return None
        if status != DONE:
            raise WorkerFailedError(
                f"the export worker {worker} failed ({status}). The last lines of its serial console:\n"
                f"{serial_tail(ctx, worker)}\nFix what they show (the worker's service account needs "
                "roles/storage.objectAdmin on the bucket; without an external IP its subnet needs Private Google Access)."
            )
        missing = [s.device for s in steps if not (values or {}).get(crc_key(s.device))]
        if missing:
            raise WorkerFailedError(f"the export worker {worker} said done but gave no crc32c for {', '.join(missing)}")
        return values

    def ended() -> None:
        log.error("the export worker %s did not finish in time; its serial console ends with:\n%s", worker, serial_tail(ctx, worker))

    return wait_for(signalled, what=f"the export worker {worker}", timeout=timeout, interval=interval, on_timeout=ended)


def _check_running(ctx: GcpContext, worker: str) -> None:
    with translated(f"reading the export worker {worker}", subject=f"instance {worker}"):
        instance = ctx.compute("Instances").get(project=ctx.project, zone=ctx.zone, instance=worker)
    if instance.status in ("STOPPING", "STOPPED", "TERMINATED", "SUSPENDED"):
        raise WorkerFailedError(
            f"the export worker {worker} stopped ({instance.status}) before it finished. The last lines of its serial "
            f"console:\n{serial_tail(ctx, worker)}"
        )


def serial_tail(ctx: GcpContext, worker: str) -> str:
    """The last lines of the worker's serial console, control characters removed; a note if unreadable."""
    try:
        with translated(f"reading the serial console of {worker}"):
            output = ctx.compute("Instances").get_serial_port_output(
                request={"project": ctx.project, "zone": ctx.zone, "instance": worker, "port": 1}
            )
    except HyperExportError as error:
        return f"(serial console unreadable: {error})"
    lines = [_CONTROL.sub("", line)[:300] for line in (output.contents or "").splitlines() if line.strip()]
    return "\n".join(lines[-SERIAL_TAIL_LINES:]) or "(serial console empty)"


def _remove_now(ctx: GcpContext, session: ExportSession[Any], created: list[Resource], *, interval: float) -> None:
    """Delete the worker, then its temporary disks (an attached disk cannot be deleted); each one deleted leaves
    the ledger. One that cannot be deleted stays in it, for the clean-up."""
    for resource in sorted(created, key=lambda r: r.kind != "instance"):
        try:
            delete(ctx, resource, interval=interval)
        except SourceNotFoundError:
            pass
        except HyperExportError as error:
            log.error("could not delete %s %s of run %s now (the clean-up will try again): %s",
                      resource.kind, resource.id, session.run_id, error)  # fmt: skip
            continue
        session.forget(resource)


def delete(ctx: GcpContext, resource: Resource, *, interval: float, timeout: float = 600) -> None:
    """Delete one instance, disk or snapshot and wait until it is gone (SourceNotFoundError if it was)."""
    if resource.kind == "instance":
        call, request = ctx.compute("Instances").delete_unary, {"zone": ctx.zone, "instance": resource.id}
    elif resource.kind == "disk":
        call, request = ctx.compute("Disks").delete_unary, {"zone": ctx.zone, "disk": resource.id}
    else:
        call, request = ctx.compute("Snapshots").delete_unary, {"snapshot": resource.id}
    action = f"deleting {resource.kind} {resource.id}"
    operation = operations.start(ctx, call, action=action, subject=f"{resource.kind} {resource.id}", project=ctx.project, **request)
    # A deletion takes seconds: polled every second at most, whatever the export's interval.
    operations.wait(ctx, operation, action=action, timeout=timeout, interval=min(interval, 1.0), cancellable=False)


def check_crc(exported: Exported, crc32c_b64: str | None) -> None:
    """The object Cloud Storage holds is the one the worker wrote."""
    if crc32c_b64 != exported.crc32c:
        raise IntegrityError(
            f"{exported.step.object}: Cloud Storage gives crc32c {crc32c_b64}, the worker wrote {exported.crc32c}; "
            "the object was replaced or damaged. Run the migration again."
        )
