"""Whole-file checksums of a file written out of order, without a second pass at the end.

``Frontier`` tracks the contiguous prefix ``[0, frontier)`` whose bytes are
final (written ranges, ranges kept from a previous run, and holes, which read
back as zeros). ``FileHasher`` runs one thread per algorithm that reads the
prefix back as it grows -- from the page cache, just behind the writers -- so
when the last range lands only the tail remains to hash.
"""

from __future__ import annotations

import heapq
import os
import threading

from .checksums import new_hasher

READ_BLOCK = 4 * 1024 * 1024


class Frontier:
    def __init__(self, size: int) -> None:
        self.size = size
        self._heap: list[tuple[int, int]] = []
        self._frontier = 0
        self._cond = threading.Condition()
        self._aborted = False

    def add(self, offset: int, length: int) -> None:
        """Mark ``[offset, offset+length)`` final. Thread-safe; ranges may arrive in any order."""
        if length <= 0:
            return
        with self._cond:
            heapq.heappush(self._heap, (offset, offset + length))
            advanced = False
            while self._heap and self._heap[0][0] <= self._frontier:
                _, end = heapq.heappop(self._heap)
                if end > self._frontier:
                    self._frontier = end
                    advanced = True
            if advanced:
                self._cond.notify_all()

    def abort(self) -> None:
        with self._cond:
            self._aborted = True
            self._cond.notify_all()

    def wait_beyond(self, position: int) -> int:
        """Block until the frontier passes ``position``; return it (or ``position`` if aborted)."""
        with self._cond:
            while self._frontier <= position and not self._aborted:
                self._cond.wait()
            return position if self._aborted else self._frontier


class FileHasher:
    """Hash ``fd`` from offset 0 to ``frontier.size`` as the frontier advances."""

    def __init__(self, fd: int, frontier: Frontier, algorithms: list[str]) -> None:
        self._fd = fd
        self._frontier = frontier
        self._hashers = {alg: new_hasher(alg) for alg in algorithms}
        self._errors: list[BaseException] = []
        self._threads = [
            threading.Thread(target=self._run, args=(alg,), name=f"transfer-hash-{alg}", daemon=True)
            for alg in algorithms
        ]

    def start(self) -> "FileHasher":
        for thread in self._threads:
            thread.start()
        return self

    def _run(self, algorithm: str) -> None:
        hasher = self._hashers[algorithm]
        buffer = bytearray(READ_BLOCK)
        view = memoryview(buffer)
        position, size = 0, self._frontier.size
        try:
            while position < size:
                limit = self._frontier.wait_beyond(position)
                if limit <= position:
                    return  # aborted
                while position < limit:
                    want = min(READ_BLOCK, limit - position)
                    got = os.preadv(self._fd, [view[:want]], position)
                    if got <= 0:
                        raise OSError(f"short read at offset {position} while hashing")
                    hasher.update(view[:got])
                    position += got
        except BaseException as exc:  # reported by result()
            self._errors.append(exc)

    def abort(self) -> None:
        self._frontier.abort()
        for thread in self._threads:
            thread.join()

    def result(self) -> dict[str, str]:
        """Wait for every algorithm to reach the end; return ``{algorithm: hex digest}``."""
        for thread in self._threads:
            thread.join()
        if self._errors:
            raise self._errors[0]
        return {alg: hasher.hexdigest() for alg, hasher in self._hashers.items()}
