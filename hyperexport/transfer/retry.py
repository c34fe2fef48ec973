"""Retry policy: exponential backoff with full jitter, Retry-After honoured, abortable sleeps."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from ..errors import TransientError
from .options import TransferOptions

T = TypeVar("T")


class Aborted(Exception):
    """Internal: another range failed, stop quietly. Never escapes ``download``."""


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


def retrying(
    options: TransferOptions,
    abort: threading.Event,
    on_retry: Callable[[RetryCallState], None] | None = None,
) -> Retrying:
    """A tenacity ``Retrying`` that retries ``TransientError`` only and wakes up when ``abort`` is set."""

    def sleep(seconds: float) -> None:
        if abort.wait(seconds):
            raise Aborted()

    return Retrying(
        stop=stop_after_attempt(options.max_attempts),
        wait=wait_strategy(options),
        retry=retry_if_exception_type(TransientError),
        sleep=sleep,
        before_sleep=on_retry,
        reraise=True,
    )


def call_with_retry(fn: Callable[[], T], options: TransferOptions, abort: threading.Event | None = None) -> T:
    return retrying(options, abort or threading.Event())(fn)
