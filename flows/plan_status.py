"""Where a nightly plan stands: one row per VM, read from the server's view of the nightly run's child runs.

    PREFECT_API_URL=http://127.0.0.1:4200/api python -m flows.plan_status NIGHTLY_FLOW_RUN_ID

Each row gives the VM, its migrate-vm run's state and duration, the step that failed and the run's message
(when it did not complete), the output directory, and a link to the run in the UI. The nightly run publishes
the same table as its ``nightly-summary`` artifact once every VM's run has ended.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass
from uuid import UUID

from .migrate_vm import vm_label

FINAL = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})
_MESSAGE_CHARS = 300


@dataclass(frozen=True)
class VmStatus:
    index: int | None  # position in the plan (None: a child run the nightly run did not start)
    provider: str
    vm: str
    state: str
    duration_s: float
    failed_step: str
    message: str
    output: str
    run_name: str
    run_url: str
    ended: bool  # the run's state is final (it may still be retried from the UI)


def _plan_index(idempotency_key: str | None) -> int | None:
    """The nightly run keys each child ``nightly-<parent id>-<index>``."""
    tail = (idempotency_key or "").rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _failed_step(task_runs: list) -> str:
    failed = [r for r in task_runs if r.state and r.state.type.value in ("FAILED", "CRASHED")]
    if not failed:
        return ""
    last = max(failed, key=lambda r: r.end_time or r.start_time or r.created)
    return last.name.rsplit("-", 1)[0]  # "convert-a1b" → "convert"


def _status(run, task_runs: list) -> VmStatus:
    from prefect.utilities.urls import url_for

    request = (run.parameters or {}).get("request") or {}
    state = run.state
    completed = bool(state and state.is_completed())
    message = "" if completed or not state else (state.message or "")
    return VmStatus(
        index=_plan_index(run.idempotency_key),
        provider=str(request.get("provider", "")),
        vm=vm_label(request),
        state=state.name if state else "Unknown",
        duration_s=round(run.estimated_run_time.total_seconds(), 1),
        failed_step="" if completed else _failed_step(task_runs),
        message=message[:_MESSAGE_CHARS],
        output=str((request.get("export") or {}).get("output_dir", "")),
        run_name=run.name,
        run_url=url_for("flow-run", obj_id=run.id) or str(run.id),
        ended=bool(state and state.type.value in FINAL),
    )


_PAGE = 200  # the most the API returns at once


def read_all(read, **filters) -> list:
    """Every object ``read`` finds, a page at a time."""
    found: list = []
    while True:
        page = read(**filters, limit=_PAGE, offset=len(found))
        found += page
        if len(page) < _PAGE:
            return found


def plan_status(nightly_run_id: UUID | str) -> list[VmStatus]:
    """Every VM the nightly run started, in plan order, as the server sees it now."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterParentFlowRunId,
    )

    parent = UUID(str(nightly_run_id))
    with get_client(sync_client=True) as client:
        client.read_flow_run(parent)  # ObjectNotFound for an id that is no flow run
        children = read_all(client.read_flow_runs, flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent])))  # fmt: skip
        task_runs: dict[UUID, list] = {}
        for start in range(0, len(children), _PAGE):
            ids = [c.id for c in children[start:start + _PAGE]]
            for task_run in read_all(client.read_task_runs, flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids))):
                task_runs.setdefault(task_run.flow_run_id, []).append(task_run)
    rows = [_status(run, task_runs.get(run.id, [])) for run in children]
    return sorted(rows, key=lambda r: (r.index is None, r.index or 0, r.run_name))


def wait_until_ended(nightly_run_id: UUID | str, expected: int, hours: float, poll_s: float = 5.0) -> list[VmStatus]:
    """The plan's rows once ``expected`` child runs have all ended, or as they stand after ``hours``.

    A server that does not answer for a while (a restart) is waited for, not an error.
    """
    import httpx
    from prefect.exceptions import PrefectHTTPStatusError

    deadline = time.monotonic() + hours * 3600
    rows: list[VmStatus] = []
    while True:
        try:
            rows = plan_status(nightly_run_id)
        except httpx.TransportError:
            pass
        except PrefectHTTPStatusError as error:
            if error.response.status_code < 500:
                raise
        if (len(rows) >= expected and all(row.ended for row in rows)) or time.monotonic() > deadline:
            return rows
        time.sleep(poll_s)


COLUMNS = ("index", "provider", "vm", "state", "duration_s", "failed_step", "message", "output", "run_url")


def as_table(rows: list[VmStatus]) -> list[dict]:
    """Rows for ``create_table_artifact``: the columns above, in that order."""
    return [{column: asdict(row)[column] for column in COLUMNS} for row in rows]


def counts(rows: list[VmStatus]) -> str:
    """``12 VMs: 10 Completed, 1 Failed, 1 Running``."""
    tally: dict[str, int] = {}
    for row in rows:
        tally[row.state] = tally.get(row.state, 0) + 1
    return f"{len(rows)} VMs: " + ", ".join(f"{n} {state}" for state, n in sorted(tally.items()))


def render(rows: list[VmStatus]) -> str:
    """The table as aligned text, for a terminal."""
    cells = [list(COLUMNS)] + [["" if v is None else str(v) for v in d.values()] for d in as_table(rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in cells]
    return "\n".join([*lines, "", counts(rows)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.plan_status", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_id", help="the nightly-migrations flow run id")
    args = parser.parse_args(argv)
    try:
        rows = plan_status(args.run_id)
    except ValueError:
        print(f"plan_status: {args.run_id!r} is not a flow run id", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - ObjectNotFound, or a server that does not answer
        print(f"plan_status: cannot read flow run {args.run_id}: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(render(rows))
    return 0 if all(row.state == "Completed" for row in rows) else 3


if __name__ == "__main__":
    sys.exit(main())
