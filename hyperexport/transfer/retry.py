"""Retry policy: exponential backoff with full jitter, Retry-After honoured, sleeps that wake on abort or cancel.

Two budgets per call: ``TransientError`` (reset, timeout, 5xx) gets
``max_attempts`` attempts in all; an ``IntegrityError`` that is not a
``SourceChangedError`` (a range that failed its own checksum) is read again up
to ``rereads`` more times. Anything else is raised at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, stop_never, wait_random_exponential

from .. import cancel
from ..errors import IntegrityError, TransientError
from .options import TransferOptions
from .source import SourceChangedError

T = TypeVar("T")

#: Longest stretch a retry sleep goes without looking at the run-wide cancel flag.
CANCEL_POLL = 0.1


class Aborted(Exception):
    """Internal: another range failed, stop quietly. Never escapes ``download``."""


def is_damage(exc: BaseException | None) -> bool:
    """A range whose bytes failed their own checksum: reading it again may give good bytes."""
    return isinstance(exc, IntegrityError) and not isinstance(exc, SourceChangedError)


def wait_strategy(options: TransferOptions) -> Callable[[RetryCallState], float]:
    """Full-jitter exponential backoff, never shorter than a ``retry_after`` the error carries."""
    jitter = wait_random_exponential(multiplier=options.backoff, max=options.backoff_max)

    def wait(state: RetryCallState) -> float:
        delay = jitter(state)
        exc = state.outcome.exception() if state.outcome is not None else None
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, (int, float)) and retry_after > 0:
            delay = max(delay, min(float(retry_after), options.retry_after_max))
        return delay

    return wait


def interruptible_sleep(seconds: float, abort: threading.Event) -> None:
    """Sleep, but raise ``Aborted`` when ``abort`` is set and ``CancelledError`` on a run-wide cancel."""
    deadline = time.monotonic() + seconds
    while True:
        cancel.raise_if_cancelled()
        left = deadline - time.monotonic()
        if left <= 0:
            return
        if abort.wait(min(left, CANCEL_POLL)):
            raise Aborted()


def retrying(
    options: TransferOptions,
    abort: threading.Event,
    on_retry: Callable[[RetryCallState], None] | None = None,
    *,
    rereads: int = 0,
) -> Retrying:
    """A tenacity ``Retrying`` with the two budgets above, whose sleeps wake up on ``abort`` or cancel."""
    counts = {"transient": 0, "damaged": 0}

    def should_retry(state: RetryCallState) -> bool:
        if state.outcome is None or not state.outcome.failed:
            return False
        exc = state.outcome.exception()
        if isinstance(exc, TransientError):
            counts["transient"] += 1
            return counts["transient"] < options.max_attempts
        if is_damage(exc):
            counts["damaged"] += 1
            return counts["damaged"] <= rereads
        return False

    return Retrying(
        stop=stop_never,
        wait=wait_strategy(options),
        retry=should_retry,
        sleep=lambda seconds: interruptible_sleep(seconds, abort),
        before_sleep=on_retry,
        reraise=True,
    )


def call_with_retry(fn: Callable[[], T], options: TransferOptions, abort: threading.Event | None = None) -> T:
    return retrying(options, abort or threading.Event())(fn)
