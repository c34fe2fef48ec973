"""Whole-file checksums of a file written out of order, without a second pass at the end.

``Frontier`` tracks the contiguous prefix ``[0, frontier)`` whose bytes are
final (written ranges, ranges kept from a previous run, and holes).
``FileHasher`` reads the prefix back once as it grows -- from the page cache,
just behind the writers -- and feeds every algorithm from that one read (a
qcow2 output is read through qemu's NBD server: a second read per algorithm
would double that traffic), so when the last range lands only the tail
remains to hash. Known zeros (``KnownZeros``) are
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
import queue
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


class _Lane:
    """One more algorithm, hashing in a thread of its own the blocks the reader has already read (hashlib lets go
    of the GIL on large updates, so the algorithms run side by side). ``done`` is the sequence number of the last
    block it finished with: the reader reuses a buffer only once every lane is past it."""

    def __init__(self, algorithm: str, hasher, progress: threading.Condition) -> None:
        self.hasher = hasher
        self.done = -1
        self.error: BaseException | None = None
        self._progress = progress
        self._queue: queue.SimpleQueue[tuple[int, memoryview] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name=f"transfer-hash-{algorithm}", daemon=True)

    def put(self, seq: int, data: memoryview) -> None:
        self._queue.put((seq, data))

    def close(self) -> None:
        self._queue.put(None)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            seq, data = item
            try:
                if self.error is None:
                    self.hasher.update(data)
            except BaseException as exc:  # noqa: BLE001 - reported by FileHasher.result()
                self.error = exc
            with self._progress:
                self.done = seq
                self._progress.notify_all()


class FileHasher:
    """Hash ``reader`` (an fd, or ``read_into(view, offset)``) from offset 0 to ``frontier.size`` as the
    frontier advances, reading each byte once whatever the number of algorithms.

    One thread reads block after block behind the frontier and hashes it with the first algorithm (and the
    ``checker``, a ``RangeChecker``); each further algorithm hashes the same buffers in a thread of its own, a
    few blocks behind at most. ``zeros``: ranges known to be zeros; they are hashed from a zero buffer, not read.
    """

    BUFFERS = 4  # blocks in flight between the reader and the slowest further algorithm

    def __init__(
        self, reader: int | Reader, frontier: Frontier, algorithms: list[str], zeros: KnownZeros | None = None,
        checker: RangeChecker | None = None,
    ) -> None:  # fmt: skip
        self._read = fd_reader(reader) if isinstance(reader, int) else reader
        self._checker = checker
        self._frontier = frontier
        self._zeros = zeros if zeros is not None else KnownZeros()
        self._hashers = {alg: new_hasher(alg) for alg in algorithms}
        (first, self._first), *further = self._hashers.items()
        self._progress = threading.Condition()
        self._lanes = [_Lane(alg, hasher, self._progress) for alg, hasher in further]
        self._errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name=f"transfer-hash-{first}", daemon=True)

    def start(self) -> "FileHasher":
        for lane in self._lanes:
            lane.thread.start()
        self._thread.start()
        return self

    def _wait_for_lanes(self, seq: int) -> None:
        """Until every further algorithm is done with block ``seq`` (or has failed)."""
        with self._progress:
            while any(lane.done < seq and lane.error is None for lane in self._lanes):
                self._progress.wait()

    def _run(self) -> None:
        buffers = [memoryview(bytearray(READ_BLOCK)) for _ in range(self.BUFFERS if self._lanes else 1)]
        zeros = memoryview(bytes(READ_BLOCK))
        position, size, seq = 0, self._frontier.size, 0
        try:
            while position < size:
                limit = self._frontier.wait_beyond(position)
                if limit <= position:
                    return  # aborted
                while position < limit:
                    cancel.raise_if_cancelled()
                    hole_end, data_end = self._zeros.extent_at(position, limit)
                    if hole_end > position:
                        block = zeros[: min(READ_BLOCK, hole_end - position)]
                    else:
                        self._wait_for_lanes(seq - len(buffers))  # the buffer's last block is hashed by all
                        view = buffers[seq % len(buffers)]
                        got = self._read(view[: min(READ_BLOCK, data_end - position)], position)
                        if got <= 0:
                            raise OSError(f"short read at offset {position} while hashing")
                        block = view[:got]
                    for lane in self._lanes:
                        lane.put(seq, block)
                    self._first.update(block)
                    if self._checker is not None:
                        self._checker.feed(position, block)
                    position += len(block)
                    seq += 1
        except BaseException as exc:  # noqa: BLE001 - reported by result()
            self._errors.append(exc)
        finally:
            for lane in self._lanes:
                lane.close()

    def _join(self) -> None:
        self._thread.join()
        for lane in self._lanes:
            lane.thread.join()

    def abort(self) -> None:
        self._frontier.abort()
        self._join()

    def result(self) -> dict[str, str]:
        """Wait for every algorithm to reach the end; return ``{algorithm: hex digest}``."""
        self._join()
        errors = self._errors + [lane.error for lane in self._lanes if lane.error is not None]
        if errors:
            raise errors[0]
        return {alg: hasher.hexdigest() for alg, hasher in self._hashers.items()}
