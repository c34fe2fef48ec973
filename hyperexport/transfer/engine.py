"""``download``: one source, one destination file, parallel ranged reads, resumable and verified.

Sequence: describe the source (retried), verify an existing destination,
take the partial file (``<dest>.part``, locked against a second downloader),
resume from its sidecar (``<dest>.part.jsonl``) when the source identity
matches, check free space, fetch the missing ranges with ``connections``
threads into the target (positional writes into a sparse file, or, with
``into="qcow2"``, NBD writes into a qcow2 image: ``qcow2_target``; holes and
all-zero pieces are never written), read the output back as its contiguous
prefix completes (whole-file hashes, and each range against the digest it
arrived with; holes and unwritten zeros are hashed as zeros, not read), check
the offered checksums, then sync and rename into place.
On failure the partial file and sidecar stay for the next run; nothing ever
appears under the final name.

A range that fails its own checksum is read again (``integrity_rereads``); a
source that changed during the download (``SourceChangedError``: another
ETag, Last-Modified or size, a 412) makes the download start over once from
a fresh ``describe``, every range fetched again, so that a file is never
stitched from two versions; a second change fails it. A run-wide cancel
(``hyperexport.cancel``, set on SIGINT/SIGTERM) stops the workers within a
piece or a tenth of a second, records what is done, and raises
``CancelledError``: the next run resumes.

An existing destination (and no ``overwrite``): if its size matches the
source and it matches every checksum the source offers, it is kept and
returned (``already_complete=True``, its sha256 recomputed). Otherwise it is
downloaded again and atomically replaced.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from pathlib import Path

from .. import cancel
from ..errors import CancelledError, HyperExportError, InvalidInputError, TransferError
from ..fsutil import commit, ensure_free_space, partial_path
from ..progress import ProgressCallback, ProgressMeter, SnapshotCallback
from . import journal
from . import ranges as R
from .fetch import RangeFetcher
from .hasher import FileHasher, Frontier, KnownZeros, RangeChecker, WrittenBytesDifferError
from .options import TransferOptions
from .plan import Plan, make_plan
from .qcow2_target import Qcow2Target
from .relay import ProgressRelay
from .result import TransferResult
from .retry import call_with_retry, is_damage
from .source import ByteRangeSource, DataRange, SourceChangedError, SourceInfo
from .target import FileTarget, Layout, Target
from .throttle import TokenBucket
from .verify import algorithms_for, compare, expected_checksums, hash_file
from .workers import WorkerPool

log = logging.getLogger(__name__)

#: Flush (fdatasync) the partial file after this many new bytes, so that the
#: page cache never holds much unwritten data and the final fsync is short.
FLUSH_BYTES = 256 * 1024 * 1024


def download(
    source: ByteRangeSource,
    dest: Path | str,
    options: TransferOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
    on_snapshot: SnapshotCallback | None = None,
    file_index: int = 1,
    total_files: int = 1,
    into: Layout = "raw",
) -> TransferResult:
    """Download ``source`` to ``dest``; see the module docstring. ``into="qcow2"``: ``dest`` becomes a qcow2
    image whose guest-visible bytes are the source's (``size`` and ``sha256`` describe those bytes).

    ``progress`` gets the seeds' ``(current, total, file_name, file_index, total_files)``
    and ``on_snapshot`` a ``ProgressSnapshot`` (speed, ETA), at most every
    ``options.progress_interval`` seconds and once at the end with
    ``current == total``. ``total`` counts the bytes that hold data (the size,
    unless the source declares holes) and ``current`` starts at the bytes a
    previous run left; it never goes backwards. Callbacks run in worker
    threads, one at a time. Errors are from ``hyperexport.errors`` (sources must
    translate their SDK's errors; a foreign exception from ``read_range`` becomes
    a ``TransferError``).
    """
    options = options or TransferOptions()
    configure = getattr(source, "configure", None)
    if callable(configure):
        configure(options)
    try:
        run = _Download(source, Path(dest), options, ProgressRelay(progress, on_snapshot), file_index, total_files, into)
        return run.run()
    finally:
        close = getattr(source, "close", None)
        if callable(close):
            close()


class _Download:
    def __init__(
        self, source, dest: Path, options: TransferOptions, relay: ProgressRelay, file_index: int, total_files: int,
        into: Layout = "raw",
    ):  # fmt: skip
        self.source, self.dest, self.options, self.relay = source, dest, options, relay
        self.into = into
        self.file_index, self.total_files = file_index, total_files
        self.partial = partial_path(dest)
        self.sidecar = journal.sidecar_path(dest)
        self.started = time.monotonic()

    def _meter(self, total: int, initial: int) -> ProgressMeter:
        return ProgressMeter(
            total,
            self.dest.name,
            file_index=self.file_index,
            total_files=self.total_files,
            on_snapshot=self.relay if self.relay.wanted else None,
            interval=self.options.progress_interval,
            initial=initial,
        )

    def run(self) -> TransferResult:
        cancel.raise_if_cancelled()
        if self.dest.is_dir():
            raise InvalidInputError(f"the destination {self.dest} is a directory; give a file name")
        try:
            self.dest.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidInputError(f"cannot create the output directory {self.dest.parent}: {exc.strerror}") from None
        info: SourceInfo = call_with_retry(self.source.describe, self.options)
        expected = expected_checksums(info, self.options, self.source.name)
        if self.dest.exists() and not self.options.overwrite:
            kept = self._keep_existing(info, expected)
            if kept is not None:
                return kept
        fd = self._open_partial()
        target = self._target(fd)
        try:
            try:
                return self._download(target, info, expected)
            except SourceChangedError as exc:
                # Never stitch two versions: every range again, from the new version.
                log.warning("%s changed during the download; starting over once (%s)", self.source.name, exc)
            info = call_with_retry(self.source.describe, self.options)
            expected = expected_checksums(info, self.options, self.source.name)
            try:
                return self._download(target, info, expected, start_over=True)
            except SourceChangedError as exc:
                self.partial.unlink(missing_ok=True)
                self.sidecar.unlink(missing_ok=True)
                raise SourceChangedError(
                    f"{self.source.name} changed during the download, and again after the download started over: "
                    "it is still being written or replaced. Nothing was kept; run again once it no longer changes. "
                    f"Last change seen: {exc}"
                ) from exc
        finally:
            target.close()
            os.close(fd)

    def _target(self, fd: int) -> Target:
        if self.into == "qcow2":
            return Qcow2Target(fd, self.partial, connections=self.options.connections)
        return FileTarget(fd, str(self.partial))

    def _keep_existing(self, info: SourceInfo, expected: dict[str, str]) -> TransferResult | None:
        if self.into != "raw":
            log.info("%s exists; writing it again", self.dest)
            return None
        if self.dest.stat().st_size != info.size:
            log.info("%s exists with another size; downloading it again", self.dest)
            return None
        digests = hash_file(self.dest, algorithms_for(expected))
        if any(digests.get(alg) != value for alg, value in expected.items()):
            log.info("%s exists but does not match the source's checksums; downloading it again", self.dest)
            return None
        meter = self._meter(info.size, info.size)
        meter.finish()
        return TransferResult(
            path=self.dest, size=info.size, source=self.source.name, bytes_fetched=0, bytes_resumed=0,
            sha256=digests["sha256"], duration_seconds=time.monotonic() - self.started, ranges_fetched=0,
            verified_checksums=sorted(expected), already_complete=True,
        )  # fmt: skip

    def _open_partial(self) -> int:
        try:
            fd = os.open(self.partial, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise InvalidInputError(f"cannot create {self.partial}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise InvalidInputError(
                f"{self.partial} is locked: another process is downloading to {self.dest}. Wait for it or stop it."
            ) from None
        return fd

    def _resume_state(self, target: Target, info: SourceInfo) -> journal.Completed | None:
        """Completed ranges to keep, or None to start over."""
        if not (self.options.resume and info.identity) or not self.sidecar.exists():
            return None
        if target.resumable_size() != info.size:
            return None
        return journal.load(self.sidecar, identity=info.identity, size=info.size, layout=target.layout)

    def _download(self, target: Target, info: SourceInfo, expected: dict[str, str], *, start_over: bool = False) -> TransferResult:
        target.close()  # a first attempt's image server, when the source changed
        kept = None if start_over else self._resume_state(target, info)
        fresh = kept is None
        completed = journal.Completed([]) if kept is None else kept
        if fresh:
            target.reset(info.size)
        target.begin()
        if not fresh:
            target.sync()  # what the page cache held is now on disk: the record may say so
        plan = make_plan(info, self.options, completed.ranges)
        if not fresh:
            log.info(
                "%s: resuming, %d of %d bytes already there", self.source.name, plan.resumed_bytes, plan.data_bytes
            )
        if self.options.preflight:
            try:
                ensure_free_space(self.dest.parent, plan.fetch_bytes, what=f"downloading {self.source.name}")
            except HyperExportError:
                if fresh:  # nothing worth keeping: leave no trace
                    self.partial.unlink(missing_ok=True)
                    self.sidecar.unlink(missing_ok=True)
                raise
        record = None
        if info.identity:
            kept_ranges = _kept_entries(completed, plan)
            rest = R.subtract(plan.resumed, R.normalize(kept_ranges, info.size))
            record = journal.ResumeRecord(self.sidecar)
            record.start(
                identity=info.identity, size=info.size, source=self.source.name, completed=sorted(kept_ranges + rest),
                digests=completed.digests, layout=target.layout,
            )  # fmt: skip
        else:
            kept_ranges = []
            self.sidecar.unlink(missing_ok=True)
        try:
            return self._fetch_all(target, info, plan, expected, record, fresh, kept_ranges, completed.digests)
        finally:
            if record is not None:
                record.close()

    def _fetch_all(
        self, target: Target, info: SourceInfo, plan: Plan, expected, record, fresh: bool,
        kept_ranges: list[DataRange], kept_digests: dict[DataRange, str],
    ) -> TransferResult:  # fmt: skip
        meter = self._meter(plan.data_bytes, plan.resumed_bytes)
        frontier = Frontier(info.size)
        for extent in plan.holes + plan.resumed:
            frontier.add(extent.offset, extent.length)
        digests = dict(kept_digests)
        checker = RangeChecker(plan.chunks + kept_ranges, digests)
        zeros = KnownZeros(plan.holes)
        unwritten_chunks: set[DataRange] = set()  # ranges whose every byte arrived as zeros and was left unwritten

        def on_unwritten_zeros(chunk: DataRange, spans: list[DataRange]) -> None:
            zeros.add(spans)
            if spans == [chunk]:
                unwritten_chunks.add(chunk)

        hasher = FileHasher(target.read_into, frontier, algorithms_for(expected), zeros, checker).start()
        abort = threading.Event()
        throttle = TokenBucket(self.options.bandwidth_limit_bps) if self.options.bandwidth_limit_bps else None
        fetcher = RangeFetcher(
            self.source, target, self.options, abort=abort, on_progress=meter.advance, throttle=throttle,
            fresh_file=fresh, on_unwritten_zeros=on_unwritten_zeros,
        )  # fmt: skip

        def on_done(chunk: DataRange, digest: str) -> None:
            digests[chunk] = digest
            if chunk not in unwritten_chunks:  # (nothing of it to settle)
                target.settle()
            if record is not None:
                record.add(chunk.offset, chunk.length, digest)
            frontier.add(chunk.offset, chunk.length)

        checkpointer = journal.Checkpointer(
            target.sync, record, self.options.checkpoint_interval, lambda: fetcher.stats.bytes_fetched, FLUSH_BYTES
        )
        checkpointer.start()
        try:
            failure = WorkerPool(fetcher, plan.chunks, self.options.connections, on_done).run()
        except BaseException:
            hasher.abort()
            raise
        finally:
            checkpointer.stop()
        interrupted = cancel.cancelled() or (failure is not None and isinstance(failure[1], CancelledError))
        if failure is not None or interrupted:
            hasher.abort()
            if record is not None:
                try:
                    record.checkpoint(target.sync)
                except (OSError, HyperExportError) as exc:
                    log.warning("could not checkpoint %s: %s", self.partial, exc)
            if interrupted or failure is None:  # (no failure here means an interrupt)
                raise CancelledError(
                    f"downloading {self.source.name} was interrupted; the ranges already written are kept in "
                    f"{self.partial.name}: run the same command again to resume"
                )
            raise self._failure_error(*failure, plan)
        fetched_at = time.monotonic()
        try:
            whole = hasher.result()
            verified = compare(expected, whole, name=self.source.name)
        except (WrittenBytesDifferError, HyperExportError):
            self.partial.unlink(missing_ok=True)
            self.sidecar.unlink(missing_ok=True)
            raise
        hashed_at = time.monotonic()
        if info.range_checksum and self.options.verify and plan.chunks:
            verified.append(info.range_checksum)
        target.finish()
        commit(self.partial, self.dest)
        self.sidecar.unlink(missing_ok=True)
        log.debug(
            "%s: fetched in %.2fs, hash tail %.2fs, fsync+rename %.2fs", self.source.name,
            fetched_at - self.started, hashed_at - fetched_at, time.monotonic() - hashed_at,
        )  # fmt: skip
        meter.finish()
        stats = fetcher.stats
        return TransferResult(
            path=self.dest, size=info.size, source=self.source.name, bytes_fetched=stats.bytes_fetched,
            bytes_resumed=plan.resumed_bytes, bytes_sparse=plan.hole_bytes, sha256=whole["sha256"],
            duration_seconds=time.monotonic() - self.started, ranges_fetched=stats.ranges_fetched,
            ranges_skipped_sparse=len(plan.holes), retries=stats.retries, verified_checksums=verified,
            layout=target.layout, read_back_ranges=checker.checked_ranges,
            read_back_bytes=checker.checked_bytes - zeros.added_bytes, bytes_zero_unwritten=zeros.added_bytes,
            read_back_unchecked_bytes=checker.unchecked_bytes + plan.resumed_bytes - sum(r.length for r in kept_ranges),
        )  # fmt: skip

    def _failure_error(self, chunk: DataRange, exc: BaseException, plan: Plan) -> BaseException:
        if not isinstance(exc, HyperExportError):
            return exc
        where = f"bytes {chunk.offset}-{chunk.end - 1}"
        hint = ""
        if isinstance(exc, TransferError):
            hint = f" Gave up after {self.options.max_attempts} attempts."
        elif is_damage(exc) and self.options.integrity_rereads:
            hint = (
                f" The range was read {self.options.integrity_rereads + 1} times and failed its checksum every "
                "time: the source itself is probably damaged."
            )
        if self.options.resume:
            hint += f" Completed ranges are kept in {self.partial.name}: run again to fetch only what is missing."
        try:
            wrapped = type(exc)(f"downloading {self.source.name} failed at {where}: {exc}{hint}")
        except Exception:  # noqa: BLE001 - an exception class with another signature
            return exc
        wrapped.__cause__ = exc
        return wrapped


def _kept_entries(completed: journal.Completed, plan: Plan) -> list[DataRange]:
    """The recorded ranges this run keeps whole: inside what the plan resumes (so none is fetched again)."""
    return [r for r in completed.ranges if R.subtract([r], plan.resumed) == []]
