"""The run's snapshot: created without memory (quiesced on request), named after the run id, removed by name.

Clean-up removes a snapshot only if its name is the run's: nothing another run or a person made is touched.
"""

from __future__ import annotations

import logging
from typing import Any

from ...errors import InvalidInputError, SourceNotFoundError
from ..polling import wait_for
from .credentials import pyvmomi
from .errors import fault_error, translated
from .inventory import retrieve

log = logging.getLogger(__name__)

PREFIX = "hyperexport-"


def run_snapshot_name(run_id: str) -> str:
    return f"{PREFIX}{run_id}"


def wait_task(task: Any, *, what: str, timeout: float, interval: float) -> Any:
    """The task's result once it succeeded; its fault as a hyperexport error when it failed."""

    def check() -> tuple[Any] | None:
        with translated(what):
            info = task.info
        if info.state == "success":
            return (info.result,)
        if info.state == "error":
            raise fault_error(info.error, what)
        return None

    def cancel() -> None:
        try:
            task.CancelTask()
        except Exception:  # noqa: BLE001 - a task that cannot be cancelled ends by itself; --cleanup-run finds its snapshot
            pass

    return wait_for(check, what=what, timeout=timeout, interval=interval, on_timeout=cancel)[0]


def create(vm: Any, run_id: str, *, quiesce: bool, timeout: float, interval: float) -> Any:
    """The run's snapshot of ``vm`` (a vim.vm.Snapshot), once vSphere has taken it."""
    what = f"creating the snapshot of VM {vm._moId}"
    with translated(what):
        task = vm.CreateSnapshot_Task(
            name=run_snapshot_name(run_id), description=f"hyperexport run {run_id}; removed when the run ends",
            memory=False, quiesce=quiesce,
        )  # fmt: skip
    try:
        return wait_task(task, what=what, timeout=timeout, interval=interval)
    except InvalidInputError as error:
        raise InvalidInputError(
            f"{error}. The datastore method needs a snapshot of the VM: check that snapshots are allowed for it "
            "(no snapshot.disabled setting, no independent or RDM disks, fewer than 32 snapshots, space on the "
            f"datastore){'; or run without quiesce' if quiesce else ''}",
            field="source.vm",
        ) from None


def of_run(vm: Any, run_id: str) -> list[str]:
    """The ids of ``vm``'s snapshots named after ``run_id`` (a failed or timed-out create may have left one)."""
    with translated(f"looking for the snapshots of run {run_id} on VM {vm._moId}"):
        return [node.snapshot._moId for node in named(vm.snapshot, run_snapshot_name(run_id))]


def _tree(roots: list[Any]) -> list[Any]:
    found: list[Any] = []
    todo = list(roots)
    while todo and len(found) < 10_000:
        node = todo.pop()
        found.append(node)
        todo.extend(node.childSnapshotList or [])
    return found


def named(vm_snapshot_info: Any, name: str) -> list[Any]:
    """The snapshot tree nodes of a VM called ``name``."""
    roots = getattr(vm_snapshot_info, "rootSnapshotList", None) or []
    return [node for node in _tree(list(roots)) if node.name == name]


def remove(content: Any, vm_id: str, snapshot_id: str, run_id: str, *, timeout: float, interval: float) -> bool:
    """Remove the run's snapshot ``snapshot_id`` of VM ``vm_id``; False if it is gone already."""
    vim, _ = pyvmomi()
    vm = vim.VirtualMachine(vm_id, content.rootFolder._stub)
    what = f"removing snapshot {snapshot_id} of VM {vm_id}"
    try:
        with translated(what):
            nodes = named(vm.snapshot, run_snapshot_name(run_id))
    except SourceNotFoundError:  # the VM is gone, and its snapshots with it
        return False
    ours = [node.snapshot for node in nodes if node.snapshot._moId == snapshot_id]
    if not ours:
        return False
    with translated(what):
        task = ours[0].RemoveSnapshot_Task(removeChildren=False, consolidate=True)
    wait_task(task, what=what, timeout=timeout, interval=interval)
    log.info("removed snapshot %s of VM %s", snapshot_id, vm_id)
    return True


def find_run(content: Any, root: Any, run_id: str) -> list[tuple[str, str]]:
    """(vm id, snapshot id) of every snapshot called after ``run_id`` under ``root``."""
    vim, _ = pyvmomi()
    name = run_snapshot_name(run_id)
    with translated(f"looking for the snapshots of run {run_id}"):
        vms = retrieve(content, root, vim.VirtualMachine, ["snapshot"])
        return [(vm._moId, node.snapshot._moId) for vm, props in vms for node in named(props.get("snapshot"), name)]
