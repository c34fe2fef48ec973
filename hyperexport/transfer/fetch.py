"""Fetch one range from a source into the download's target, with retries."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import xxhash
from tenacity import RetryCallState

from .. import cancel
from ..errors import HyperExportError, TransferError
from .options import TransferOptions
from .redact import redact_text
from .retry import Aborted, is_damage, retrying
from .source import Buffer, ByteRangeSource, DataRange
from .target import Target
from .throttle import TokenBucket

log = logging.getLogger(__name__)

_ZEROS = bytes(1024 * 1024)


def is_zero(piece: Buffer) -> bool:
    """True when every byte of ``piece`` is 0 (memcmp speed, no copies)."""
    view = memoryview(piece)
    if view.format != "B":
        view = view.cast("B")
    n = view.nbytes
    if n and (view[0] or view[n - 1]):
        return False
    step = len(_ZEROS)
    return all(_ZEROS.startswith(view[start : start + step]) for start in range(0, n, step))


@dataclass
class FetchStats:
    """Counters shared by the workers (guarded by ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    bytes_fetched: int = 0
    ranges_fetched: int = 0
    retries: int = 0


#: Pieces of a range are gathered into blocks of this size before they are written: what a socket read
#: returns under a rate cap is often 16 KiB, and every write costs a system call, or an NBD request and a qcow2
#: allocation in the image server (4 KiB writes took the daemon eight times the CPU of 1 MiB ones).
WRITE_BLOCK = 1024 * 1024

#: Zeros are looked for in blocks of this size, aligned to the disk: a qcow2 cluster (and 16 file-system blocks),
#: so a piece that is part data, part zeros leaves its zero blocks unallocated too.
ZERO_BLOCK = 64 * 1024


def data_spans(view: memoryview, position: int) -> list[tuple[int, int, bool]]:
    """``view`` (bytes, at ``position``) as ``(start, end, is_data)`` spans within it, split at ``ZERO_BLOCK``
    boundaries of the disk and merged: a piece that is all data or all zeros is one span."""
    n = view.nbytes
    spans: list[tuple[int, int, bool]] = []
    start = 0
    while start < n:
        end = min(n, start + ZERO_BLOCK - (position + start) % ZERO_BLOCK)
        data = not is_zero(view[start:end])
        if spans and spans[-1][2] == data:
            spans[-1] = (spans[-1][0], end, data)
        else:
            spans.append((start, end, data))
        start = end
    return spans


def range_digest() -> "xxhash.xxh3_128":
    """The digest a range's bytes are recorded with as they arrive, and checked with when read back."""
    return xxhash.xxh3_128()


class RangeFetcher:
    """Reads ranges from ``source`` and writes them at their offset in ``target``.

    A transient failure, or bytes that fail the range's own checksum, re-read
    the whole range (so per-range checksums in the source stay valid); progress
    is reported per range as a high-water mark, so a retry never counts bytes
    twice. A run-wide cancel (``hyperexport.cancel``) stops it at the next piece
    with ``CancelledError``. Every range's bytes are digested from memory as they
    arrive (``range_digest``), so what is later read back can be checked against them.

    In a fresh file, the first attempt at a range leaves its all-zero blocks
    unwritten; once that attempt succeeds, ``on_unwritten_zeros(range, blocks)``
    is told which they were (before the range is reported done), so they need not
    be read back.
    A retry writes its zeros: an unwritten block of a failed attempt may hold
    bytes of it.
    """

    def __init__(
        self,
        source: ByteRangeSource,
        target: Target,
        options: TransferOptions,
        *,
        abort: threading.Event,
        on_progress: Callable[[int], None],
        throttle: TokenBucket | None,
        fresh_file: bool,
        on_unwritten_zeros: Callable[[DataRange, list[DataRange]], None] | None = None,
    ) -> None:
        self.source = source
        self.target = target
        self.options = options
        self.abort = abort
        self.on_progress = on_progress
        self.throttle = throttle
        self.fresh_file = fresh_file
        self.on_unwritten_zeros = on_unwritten_zeros
        self.stats = FetchStats()
        self._local = threading.local()

    def _write_buffer(self) -> memoryview:
        """This worker thread's ``WRITE_BLOCK`` buffer (one per thread, reused by every range it fetches)."""
        buffer = getattr(self._local, "buffer", None)
        if buffer is None:
            buffer = self._local.buffer = memoryview(bytearray(WRITE_BLOCK))
        return buffer

    def fetch(self, chunk: DataRange) -> str:
        """Fetch ``chunk`` completely or raise (``Aborted`` when another range failed); returns its digest."""
        reported = [0]  # progress high-water mark within this range
        attempt_no = [0]
        digest = [""]
        unwritten: list[DataRange] = []

        def count_retry(state: RetryCallState) -> None:
            with self.stats.lock:
                self.stats.retries += 1
            exc = state.outcome.exception() if state.outcome else None
            if is_damage(exc):
                log.warning("%s: reading bytes %d-%d again: %s", self.source.name, chunk.offset, chunk.end - 1, exc)
            else:
                log.info("%s: retrying bytes %d-%d after: %s", self.source.name, chunk.offset, chunk.end - 1, exc)

        def attempt() -> None:
            attempt_no[0] += 1
            unwritten.clear()
            skip_zeros = self.fresh_file and attempt_no[0] == 1 and self.options.skip_zero_blocks
            digest[0] = self._fetch_once(chunk, reported, unwritten if skip_zeros else None)

        try:
            retrying(self.options, self.abort, count_retry, rereads=self.options.integrity_rereads)(attempt)
        except (Aborted, HyperExportError):
            raise
        except Exception as exc:  # a source that raised outside the error tree: do not retry blindly
            raise TransferError(
                f"{self.source.name}: reading bytes {chunk.offset}-{chunk.end - 1} failed: "
                f"{type(exc).__name__}: {redact_text(str(exc))}"
            ) from None
        with self.stats.lock:
            self.stats.ranges_fetched += 1
        if unwritten and self.on_unwritten_zeros is not None:
            self.on_unwritten_zeros(chunk, unwritten)
        return digest[0]

    def _fetch_once(self, chunk: DataRange, reported: list[int], unwritten: list[DataRange] | None) -> str:
        """One attempt; with ``unwritten``, zero blocks are not written but appended there (merged)."""
        position, end = chunk.offset, chunk.end
        digest = range_digest()
        buffer, filled = self._write_buffer(), 0  # bytes [position - filled, position) wait in buffer[:filled]
        iterator = iter(self.source.read_range(chunk.offset, chunk.length))
        try:
            for piece in iterator:
                n = piece.nbytes if isinstance(piece, memoryview) else len(piece)
                if n == 0:
                    continue
                if self.abort.is_set():
                    raise Aborted()
                cancel.raise_if_cancelled()
                if position + n > end:
                    raise TransferError(
                        f"{self.source.name}: source returned more than the {chunk.length} bytes asked for "
                        f"at offset {chunk.offset}"
                    )
                with self.stats.lock:
                    self.stats.bytes_fetched += n
                if self.throttle is not None:
                    self.throttle.consume(n, self.abort)
                digest.update(piece)
                filled = self._gather(piece, n, buffer, filled, position, unwritten)
                position += n
                done = position - chunk.offset
                if done > reported[0]:
                    self.on_progress(done - reported[0])
                    reported[0] = done
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
        if filled:
            self._write(buffer[:filled], position - filled, unwritten)
        if position != end:
            raise TransferError(
                f"{self.source.name}: bytes {chunk.offset}-{end - 1} ended early after "
                f"{position - chunk.offset} of {chunk.length} bytes"
            )
        return digest.hexdigest()

    def _gather(self, piece: Buffer, n: int, buffer: memoryview, filled: int, position: int,
                unwritten: list[DataRange] | None) -> int:  # fmt: skip
        """Add ``piece`` (``n`` bytes at ``position``) to ``buffer`` (``filled`` bytes in it so far), writing
        out every full buffer; a piece of a full buffer or more, arriving at an empty one, is written as it is.
        Returns how many bytes the buffer holds now."""
        if filled == 0 and n >= len(buffer):
            self._write(piece, position, unwritten)
            return 0
        view = piece if isinstance(piece, memoryview) and piece.format == "B" else memoryview(piece).cast("B")
        taken = 0
        while taken < n:
            k = min(n - taken, len(buffer) - filled)
            buffer[filled : filled + k] = view[taken : taken + k]
            filled, taken = filled + k, taken + k
            if filled == len(buffer):
                self._write(buffer, position + taken - filled, unwritten)
                filled = 0
        return filled

    def _write(self, piece: Buffer, position: int, unwritten: list[DataRange] | None) -> None:
        """Write the data of ``piece``; its zero blocks are zeroed, or left as holes and listed in ``unwritten``."""
        view = memoryview(piece).cast("B") if not isinstance(piece, memoryview) or piece.format != "B" else piece
        for start, end, data in data_spans(view, position):
            if data:
                self.target.write(view[start:end], position + start)
            elif unwritten is None:
                self.target.write_zeroes(position + start, end - start)
            elif unwritten and unwritten[-1].end == position + start:
                unwritten[-1] = DataRange(unwritten[-1].offset, unwritten[-1].length + end - start)
            else:
                unwritten.append(DataRange(position + start, end - start))
