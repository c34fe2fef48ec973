"""Run a ``RangeFetcher`` over a list of ranges with a bounded pool of threads."""

from __future__ import annotations

import threading
from collections.abc import Callable

from .. import cancel
from .fetch import RangeFetcher
from .retry import Aborted
from .source import DataRange


class WorkerPool:
    """``connections`` threads take ranges in offset order (so the hash frontier keeps up).

    The first failure sets ``abort``: the other workers drop their range at the
    next piece and stop. So does a run-wide cancel (``hyperexport.cancel``),
    which also wakes workers sleeping in a backoff or a bandwidth limit.
    ``on_done(range, digest)`` runs in the worker that fetched the range.
    ``run`` returns ``(failed_range, exception)`` or None; after a cancel it may
    return None with ranges left undone: the caller checks ``cancel.cancelled()``.
    """

    def __init__(
        self,
        fetcher: RangeFetcher,
        chunks: list[DataRange],
        connections: int,
        on_done: Callable[[DataRange, str], None],
    ) -> None:
        self._fetcher = fetcher
        self._chunks = chunks
        self._next = 0
        self._lock = threading.Lock()
        self._on_done = on_done
        self._failure: tuple[DataRange, BaseException] | None = None
        self._threads = [
            threading.Thread(target=self._work, name=f"transfer-worker-{i}", daemon=True)
            for i in range(min(connections, len(chunks)))
        ]

    @property
    def abort(self) -> threading.Event:
        return self._fetcher.abort

    def _take(self) -> DataRange | None:
        with self._lock:
            if self.abort.is_set() or self._next >= len(self._chunks):
                return None
            chunk = self._chunks[self._next]
            self._next += 1
            return chunk

    def _work(self) -> None:
        while (chunk := self._take()) is not None:
            try:
                digest = self._fetcher.fetch(chunk)
                self._on_done(chunk, digest)
            except Aborted:
                return
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                with self._lock:
                    if self._failure is None:
                        self._failure = (chunk, exc)
                self.abort.set()
                return

    def run(self) -> tuple[DataRange, BaseException] | None:
        for thread in self._threads:
            thread.start()
        try:
            for thread in self._threads:
                while thread.is_alive():
                    thread.join(0.1)
                    if cancel.cancelled():
                        self.abort.set()
        except BaseException:  # KeyboardInterrupt: stop the workers, keep what is done
            self.abort.set()
            for thread in self._threads:
                thread.join()
            raise
        return self._failure
