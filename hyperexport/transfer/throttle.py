"""A token bucket shared by all connections, for links shared with production."""

from __future__ import annotations

import threading
import time


class TokenBucket:
    """Limit the long-run rate to ``rate`` bytes/s with bursts of at most ``burst`` bytes.

    Implemented as virtual scheduling (GCRA): ``_paid_until`` is the time by
    which every byte granted so far is paid for at ``rate``. A caller reports
    the bytes it just received and sleeps until they are paid, less the burst
    allowance. Thread-safe; sleeping happens outside the lock and can be
    interrupted through ``abort``.
    """

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = float(rate)
        self.burst = float(burst) if burst is not None else max(64 * 1024.0, self.rate / 20)
        self._lock = threading.Lock()
        self._paid_until = time.monotonic()

    def consume(self, nbytes: int, abort: threading.Event | None = None) -> None:
        if nbytes <= 0:
            return
        burst_time = self.burst / self.rate
        with self._lock:
            now = time.monotonic()
            self._paid_until = max(self._paid_until, now - burst_time) + nbytes / self.rate
            delay = self._paid_until - burst_time - now
        if delay > 0:
            if abort is not None:
                abort.wait(delay)
            else:
                time.sleep(delay)
