"""Run-wide cancellation: set once on SIGINT/SIGTERM, checked by long loops.

Transfer workers and converter loops call ``raise_if_cancelled`` between
pieces of work; the partial files they leave stay resumable. Subprocess trees
are ended separately by ``procs.terminate_all``.
"""

from __future__ import annotations

import threading

from .errors import CancelledError

_event = threading.Event()


def request_cancel() -> None:
    _event.set()


def cancelled() -> bool:
    return _event.is_set()


def reset() -> None:
    """For a process that runs several migrations (tests, a long-lived worker)."""
    _event.clear()


def raise_if_cancelled() -> None:
    if _event.is_set():
        raise CancelledError("the run was interrupted; run the same command again to resume the download")


def wait(seconds: float) -> bool:
    """Sleep up to ``seconds``; True when cancellation was requested meanwhile."""
    return _event.wait(seconds)
