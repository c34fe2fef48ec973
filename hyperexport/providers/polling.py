"""Wait for a provider's operation (a snapshot, an export task) until it is done, failed, or out of time."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from .. import cancel
from ..errors import TransferError

log = logging.getLogger(__name__)

T = TypeVar("T")


def wait_for(
    check: Callable[[], T | None],
    *,
    what: str,
    timeout: float,
    interval: float,
    on_timeout: Callable[[], None] | None = None,
) -> T:
    """Call ``check`` every ``interval`` seconds until it returns a value (it raises to fail).

    After ``timeout`` seconds, ``on_timeout`` runs (e.g. to cancel the task) and a ``TransferError`` says how
    to give it more time. A cancelled run stops waiting at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() >= deadline:
            if on_timeout is not None:
                on_timeout()
            raise TransferError(
                f"{what} did not finish within {timeout:.0f}s. Give it more time with a larger "
                "export_timeout_seconds, or run again later."
            )
        log.debug("waiting for %s", what)
        cancel.wait(max(0.0, min(interval, deadline - time.monotonic())))
        cancel.raise_if_cancelled()
