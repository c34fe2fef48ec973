"""Whole-file checksums of a file written out of order, without a second pass at the end.

``Frontier`` tracks the contiguous prefix ``[0, frontier)`` whose bytes are
final (written ranges, ranges kept from a previous run, and holes).
``FileHasher`` runs one thread per algorithm that reads the prefix back as it
grows -- from the page cache, just behind the writers -- so when the last
range lands only the tail remains to hash. Known zeros (``KnownZeros``) are
hashed from a zero buffer instead of being read: the holes the source declared,
and the all-zero pieces of fetched ranges that were left unwritten in a fresh
output (reading them back would move gigabytes of zeros through qemu's NBD
server, or fill the page cache with zero pages). Every block read or hashed
looks at the run-wide cancel flag first, so hashing a huge file stops within one
block of a SIGINT.

``RangeChecker`` rides along with the first algorithm: it digests each range as
it is read back and compares it with the digest the range's bytes arrived with,
so a download proves that what it wrote is what it received, from a single read
of the output and no second read of the source.
"""

from __future__ import annotations

import bisect
import heapq
import os
import threading
from collections.abc import Callable, Mapping, Sequence

from .. import cancel
from ..errors import TransferError
from .checksums import new_hasher
from .fetch import range_digest
from .source import DataRange

Reader = Callable[[memoryview, int], int]

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


class KnownZeros:
    """Disjoint ranges of the output known to read as zeros, growing while the download runs. Thread-safe; a
    range must be added before the frontier passes it (the fetcher adds a range's unwritten zeros before the
    range is marked final)."""

    def __init__(self, ranges: Sequence[DataRange] = ()) -> None:
        self._ranges = sorted(ranges)
        self._starts = [r.offset for r in self._ranges]
        self._lock = threading.Lock()
        self.added_bytes = 0  # bytes added after construction: fetched zeros left unwritten

    def add(self, ranges: Sequence[DataRange]) -> None:
        with self._lock:
            for r in ranges:
                i = bisect.bisect_left(self._starts, r.offset)
                self._starts.insert(i, r.offset)
                self._ranges.insert(i, r)
                self.added_bytes += r.length

    def extent_at(self, position: int, limit: int) -> tuple[int, int]:
        """``(zeros_end, data_end)``: where the known zeros at ``position`` end (``position`` if none) and
        where the bytes to read from ``position`` end (at the next known zeros), both capped at ``limit``."""
        with self._lock:
            i = bisect.bisect_right(self._starts, position) - 1
            if i >= 0 and position < self._ranges[i].end:
                return min(self._ranges[i].end, limit), position
            following = self._starts[i + 1] if i + 1 < len(self._ranges) else limit
            return position, min(following, limit)


class WrittenBytesDifferError(TransferError):
    """What was read back from the output is not what arrived from the source."""


class RangeChecker:
    """Compares each of ``ranges`` as read back (in offset order) with ``digests[range]``, the digest of the
    bytes it arrived with. ``digests`` may fill in while the check runs: a range's digest is there before the
    frontier passes it. A range with no digest (kept from a record that has none) is counted as unchecked."""

    def __init__(self, ranges: Sequence[DataRange], digests: Mapping[DataRange, str]) -> None:
        self._ranges = sorted(ranges)
        self._digests = digests
        self._i = 0
        self._current = range_digest()
        self.checked_ranges = 0
        self.checked_bytes = 0
        self.unchecked_bytes = 0

    def feed(self, position: int, data: memoryview) -> None:
        end = position + len(data)
        while self._i < len(self._ranges):
            r = self._ranges[self._i]
            if r.offset >= end:
                return
            lo, hi = max(position, r.offset), min(end, r.end)
            if hi > lo:
                self._current.update(data[lo - position : hi - position])
            if hi < r.end:
                return
            self._finish(r)

    def _finish(self, r: DataRange) -> None:
        expected = self._digests.get(r)
        if expected is None:
            self.unchecked_bytes += r.length
        elif self._current.hexdigest() != expected:
            raise WrittenBytesDifferError(
                f"bytes {r.offset}-{r.end - 1} read back from the output differ from what the source sent: the "
                "output's disk or file system corrupted them. The partial output was discarded; check the disk, "
                "then run again"
            )
        else:
            self.checked_ranges += 1
            self.checked_bytes += r.length
        self._i += 1
        self._current = range_digest()


def fd_reader(fd: int) -> Reader:
    return lambda view, offset: os.preadv(fd, [view], offset)


class FileHasher:
    """Hash ``reader`` (an fd, or ``read_into(view, offset)``) from offset 0 to ``frontier.size`` as the
    frontier advances.

    ``zeros``: ranges known to be zeros; they are not read. ``checker``: a ``RangeChecker`` fed by the first
    algorithm's thread.
    """

    def __init__(
        self, reader: int | Reader, frontier: Frontier, algorithms: list[str], zeros: KnownZeros | None = None,
        checker: RangeChecker | None = None,
    ) -> None:  # fmt: skip
        self._read = fd_reader(reader) if isinstance(reader, int) else reader
        self._checker = checker
        self._frontier = frontier
        self._zeros = zeros if zeros is not None else KnownZeros()
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
        checker = self._checker if algorithm == next(iter(self._hashers)) else None
        view = memoryview(bytearray(READ_BLOCK))
        zeros = memoryview(bytes(READ_BLOCK))
        position, size = 0, self._frontier.size
        try:
            while position < size:
                limit = self._frontier.wait_beyond(position)
                if limit <= position:
                    return  # aborted
                while position < limit:
                    cancel.raise_if_cancelled()
                    hole_end, data_end = self._zeros.extent_at(position, limit)
                    if hole_end > position:
                        n = min(READ_BLOCK, hole_end - position)
                        hasher.update(zeros[:n])
                        if checker is not None:
                            checker.feed(position, zeros[:n])
                        position += n
                        continue
                    want = min(READ_BLOCK, data_end - position)
                    got = self._read(view[:want], position)
                    if got <= 0:
                        raise OSError(f"short read at offset {position} while hashing")
                    hasher.update(view[:got])
                    if checker is not None:
                        checker.feed(position, view[:got])
                    position += got
        except BaseException as exc:  # noqa: BLE001 - reported by result()
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
