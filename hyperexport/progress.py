"""Progress reporting shared by every provider and the transfer engine.

The seeds' callback contract is kept as is:

    callback(current, total, file_name, file_index, total_files)

``ProgressMeter`` sits between the code that moves bytes (which reports deltas
from many threads) and the callbacks (which want a monotonic ``current``,
speed and ETA, and should not be called per chunk).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable, Protocol

from pydantic import BaseModel, ConfigDict


_log = logging.getLogger(__name__)


class ProgressCallback(Protocol):
    def __call__(self, current: int, total: int, file_name: str, file_index: int, total_files: int) -> None: ...


class ProgressSnapshot(BaseModel):
    """One reading of a transfer's progress."""

    model_config = ConfigDict(frozen=True)

    current: int
    total: int
    file_name: str
    file_index: int
    total_files: int
    bytes_per_second: float
    eta_seconds: float | None
    elapsed_seconds: float

    @property
    def fraction(self) -> float:
        return 1.0 if self.total <= 0 else min(1.0, self.current / self.total)


SnapshotCallback = Callable[[ProgressSnapshot], None]


class ProgressMeter:
    """Thread-safe byte counter that calls back at most every ``interval`` seconds.

    ``current`` never goes backwards: bytes re-fetched after a retry are not
    counted twice, because callers report only bytes they have committed.
    The last call (from ``finish``) always reports ``current == total``.
    """

    def __init__(
        self,
        total: int,
        file_name: str,
        *,
        file_index: int = 1,
        total_files: int = 1,
        callback: ProgressCallback | None = None,
        on_snapshot: SnapshotCallback | None = None,
        interval: float = 1.0,
        initial: int = 0,
        window_seconds: float = 5.0,
    ) -> None:
        self.total = total
        self.file_name = file_name
        self.file_index = file_index
        self.total_files = total_files
        self._callback = callback
        self._on_snapshot = on_snapshot
        self._interval = interval
        self._window = window_seconds
        self._lock = threading.Lock()
        self._current = initial
        self._start = time.monotonic()
        self._last_emit = 0.0
        self._samples: deque[tuple[float, int]] = deque([(self._start, initial)])
        self._callback_failed = False

    @property
    def current(self) -> int:
        return self._current

    def advance(self, nbytes: int) -> None:
        if nbytes <= 0:
            return
        with self._lock:
            self._current = min(self.total, self._current + nbytes) if self.total else self._current + nbytes
            now = time.monotonic()
            self._samples.append((now, self._current))
            while len(self._samples) > 2 and now - self._samples[0][0] > self._window:
                self._samples.popleft()
            if now - self._last_emit < self._interval:
                return
            self._last_emit = now
            snapshot = self._snapshot(now)
        self._emit(snapshot)

    def finish(self) -> ProgressSnapshot:
        with self._lock:
            self._current = max(self._current, self.total)
            snapshot = self._snapshot(time.monotonic())
        self._emit(snapshot)
        return snapshot

    def snapshot(self) -> ProgressSnapshot:
        with self._lock:
            return self._snapshot(time.monotonic())

    def _snapshot(self, now: float) -> ProgressSnapshot:
        t0, b0 = self._samples[0]
        span = now - t0
        speed = (self._current - b0) / span if span > 0 else 0.0
        remaining = max(0, self.total - self._current)
        eta = remaining / speed if speed > 0 else (0.0 if remaining == 0 else None)
        return ProgressSnapshot(
            current=self._current,
            total=self.total,
            file_name=self.file_name,
            file_index=self.file_index,
            total_files=self.total_files,
            bytes_per_second=speed,
            eta_seconds=eta,
            elapsed_seconds=now - self._start,
        )

    def _emit(self, snapshot: ProgressSnapshot) -> None:
        # Progress is a side channel: a callback that raises must never abort the transfer it reports on.
        try:
            if self._callback is not None:
                self._callback(snapshot.current, snapshot.total, snapshot.file_name, snapshot.file_index, snapshot.total_files)
            if self._on_snapshot is not None:
                self._on_snapshot(snapshot)
        except Exception as error:  # noqa: BLE001
            if not self._callback_failed:
                self._callback_failed = True
                _log.warning("progress callback for %s failed (%s: %s); the transfer goes on", self.file_name, type(error).__name__, error)


_listeners: list[SnapshotCallback] = []
_listeners_lock = threading.Lock()


def subscribe(listener: SnapshotCallback) -> Callable[[], None]:
    """Receive every transfer's snapshots in this process (the CLI's progress bar); returns an unsubscribe."""
    with _listeners_lock:
        _listeners.append(listener)

    def unsubscribe() -> None:
        with _listeners_lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return unsubscribe


def broadcast(on_snapshot: SnapshotCallback | None) -> SnapshotCallback | None:
    """``on_snapshot`` plus every subscribed listener, as one callback."""
    with _listeners_lock:
        targets = [*([on_snapshot] if on_snapshot else []), *_listeners]
    if not targets:
        return None

    def fan_out(snapshot: ProgressSnapshot) -> None:
        for target in targets:
            target(snapshot)

    return fan_out
