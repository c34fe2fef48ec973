"""Wait for Compute Engine operations, polled through the operations clients of the same endpoint."""

from __future__ import annotations

import time
from typing import Any

from ...errors import TransferError
from ..polling import wait_for
from .clients import RUN_LABEL, GcpContext, label_value
from .errors import operation_error, translated


def _refresh(ctx: GcpContext, operation: Any) -> Any:
    if operation.zone:
        return ctx.compute("ZoneOperations").get(project=ctx.project, zone=ctx.zone, operation=operation.name)
    if operation.region:
        return ctx.compute("RegionOperations").get(project=ctx.project, region=ctx.region, operation=operation.name)
    return ctx.compute("GlobalOperations").get(project=ctx.project, operation=operation.name)


def wait(ctx: GcpContext, operation: Any, *, action: str, subject: str | None = None, timeout: float, interval: float,
         cancellable: bool = True) -> Any:  # fmt: skip
    """Poll ``operation`` (a compute_v1.Operation) until DONE; its error is raised translated. A clean-up waits
    with ``cancellable=False``: a cancelled run must still see its worker and disks gone."""
    current = [operation]

    def done() -> Any | None:
        if current[0].status != current[0].Status.DONE:
            with translated(f"checking the operation of {action}", subject=subject):
                current[0] = _refresh(ctx, current[0])
        if current[0].status != current[0].Status.DONE:
            return None
        if current[0].error and current[0].error.errors:
            raise operation_error(current[0], action=action, subject=subject)
        return current[0]

    if cancellable:
        return wait_for(done, what=action, timeout=timeout, interval=interval)
    deadline = time.monotonic() + timeout
    while (finished := done()) is None:
        if time.monotonic() >= deadline:
            raise TransferError(f"{action} did not finish within {timeout:.0f}s; run the clean-up again later")
        time.sleep(interval)
    return finished


def start(ctx: GcpContext, call: Any, *, action: str, subject: str | None = None, **request: Any) -> Any:
    """``call(**request)`` for an operation (the SDK's ``*_unary`` form), translated."""
    with translated(action, subject=subject):
        return call(**request)


def insert_own(ctx: GcpContext, call: Any, *, fetch: Any, release: Any, run_id: str, action: str,
               subject: str | None = None, **request: Any) -> Any | None:  # fmt: skip
    """``start`` for a resource of the run's own deterministic name, recorded in the session before. A 409 for
    one that carries this run's label is an earlier attempt's (its answer lost): adopted, None returned (nothing
    to wait for). Another's stays a 409, after ``release()`` took it out of the ledger: the roll-back leaves it."""
    from google.api_core import exceptions as gx

    with translated(action, subject=subject):
        try:
            return call(**request)
        except gx.Conflict:
            existing = fetch()
            if dict(existing.labels or {}).get(RUN_LABEL) != label_value(run_id):
                release()
                raise
            return None
