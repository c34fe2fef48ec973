"""The resume sidecar: which ranges of a partial download are already written.

``<dest>.part.jsonl`` sits beside ``<dest>.part``. It is JSON Lines, append-only::

    {"format": "hyperexport-transfer-resume/1", "identity": "...", "size": N, "boot_id": "...", "source": "...",
     "layout": "raw"}
    [offset, length, digest]  one per completed range, appended as soon as it is written; digest: the
                              xxh3-128 of the range's bytes as they arrived (older records have none)
    {"durable": k}            the first k ranges reached the disk (written after an fdatasync)

A range is appended after its bytes are in the page cache, so a killed process
loses at most the ranges in flight. After a reboot (different ``boot_id``)
only the ranges before the last ``durable`` marker are trusted, because the
page cache that held the others is gone. A torn last line is ignored. A record of
another ``layout`` (a raw partial file, or a qcow2 image written through NBD) is
for another kind of partial file and is not used.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..fsutil import fsync_dir, partial_path
from .source import DataRange

FORMAT = "hyperexport-transfer-resume/1"
log = logging.getLogger(__name__)


def sidecar_path(dest: Path) -> Path:
    part = partial_path(dest)
    return part.with_name(part.name + ".jsonl")


def boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


@dataclass
class Completed:
    """What a previous run completed: its ranges, and the digest each was written with (when recorded)."""

    ranges: list[DataRange]
    digests: dict[DataRange, str] = field(default_factory=dict)


def load(path: Path, *, identity: str, size: int, layout: str = "raw") -> Completed | None:
    """The ranges a previous run completed, or None when the record is missing or for other content."""
    try:
        lines = path.read_bytes().split(b"\n")
    except FileNotFoundError:
        return None
    try:
        header = json.loads(lines[0])
    except ValueError:
        log.warning("ignoring unreadable resume record %s", path)
        return None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        return None
    if header.get("identity") != identity or header.get("size") != size:
        log.info("resume record %s is for other content (source changed); starting over", path)
        return None
    if header.get("layout", "raw") != layout:
        log.info("resume record %s is for a %s partial file, not %s; starting over", path, header.get("layout"), layout)
        return None
    entries: list[DataRange] = []
    digests: dict[DataRange, str] = {}
    durable = 0
    for raw in lines[1:]:
        try:
            item = json.loads(raw)
        except ValueError:
            break  # torn tail
        if isinstance(item, list) and len(item) in (2, 3) and all(isinstance(v, int) and v >= 0 for v in item[:2]):
            entries.append(DataRange(item[0], item[1]))
            if len(item) == 3 and isinstance(item[2], str):
                digests[entries[-1]] = item[2]
        elif isinstance(item, dict) and isinstance(item.get("durable"), int):
            durable = max(durable, min(item["durable"], len(entries)))
        else:
            break
    current = boot_id()
    if current is None or header.get("boot_id") != current:
        entries = entries[:durable]
    return Completed(entries, {r: d for r, d in digests.items() if r in set(entries)})


def _entry(offset: int, length: int, digest: str | None) -> str:
    return json.dumps([offset, length] if digest is None else [offset, length, digest])


class ResumeRecord:
    """Writer side of the sidecar. ``add`` is thread-safe and cheap (one small append)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._lock = threading.Lock()
        self._count = 0

    def start(
        self, *, identity: str, size: int, source: str, completed: list[DataRange],
        digests: dict[DataRange, str] | None = None, layout: str = "raw",
    ) -> None:  # fmt: skip
        """Rewrite the record atomically with ``completed`` (already durable) and open it for appends."""
        digests = digests or {}
        header = {"format": FORMAT, "identity": identity, "size": size, "boot_id": boot_id(), "source": source,
                  "layout": layout}  # fmt: skip
        lines = [json.dumps(header)] + [_entry(r.offset, r.length, digests.get(r)) for r in completed]
        lines.append(json.dumps({"durable": len(completed)}))
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as handle:
            handle.write("\n".join(lines) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        fsync_dir(self.path.parent)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._count = len(completed)

    def add(self, offset: int, length: int, digest: str | None = None) -> None:
        line = (_entry(offset, length, digest) + "\n").encode()
        with self._lock:
            if self._fd is not None:
                os.write(self._fd, line)
                self._count += 1

    def checkpoint(self, sync) -> None:
        """Make every range recorded so far durable: ``sync()`` the data, then say so."""
        with self._lock:
            count = self._count
        sync()
        with self._lock:
            if self._fd is not None:
                os.write(self._fd, f'{{"durable": {count}}}\n'.encode())

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


class Checkpointer(threading.Thread):
    """Flushes the partial file while the download runs, so the final fsync is short.

    Every ``interval`` seconds, or as soon as ``flush_bytes`` more bytes were
    written (``written()`` counts them), it syncs the data (``sync()``) and, when there
    is a resume record, marks the ranges recorded so far as durable.
    """

    def __init__(self, sync, record: ResumeRecord | None, interval: float, written, flush_bytes: int) -> None:
        super().__init__(name="transfer-checkpoint", daemon=True)
        self._sync, self._record, self._interval = sync, record, interval
        self._written, self._flush_bytes = written, flush_bytes
        self.stop_event = threading.Event()

    def run(self) -> None:
        last_time, last_bytes = time.monotonic(), self._written()
        while not self.stop_event.wait(min(self._interval, 0.25)):
            now, written = time.monotonic(), self._written()
            if now - last_time < self._interval and written - last_bytes < self._flush_bytes:
                continue
            last_time, last_bytes = now, written
            try:
                if self._record is not None:
                    self._record.checkpoint(self._sync)
                else:
                    self._sync()
            except OSError as exc:  # the workers will hit the same problem and report it
                log.warning("checkpoint of %s failed: %s", self._record.path if self._record else "data", exc)
                return

    def stop(self) -> None:
        self.stop_event.set()
        self.join()
