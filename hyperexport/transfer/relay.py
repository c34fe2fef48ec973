"""Hands ProgressMeter snapshots to the caller's callbacks, one at a time and never backwards."""

from __future__ import annotations

import threading

from ..progress import ProgressCallback, ProgressSnapshot, SnapshotCallback


class ProgressRelay:
    """Serialises callbacks and drops stale snapshots, so ``current`` never goes backwards."""

    def __init__(self, progress: ProgressCallback | None, on_snapshot: SnapshotCallback | None) -> None:
        self.progress, self.on_snapshot = progress, on_snapshot
        self._lock = threading.Lock()
        self._last = -1

    @property
    def wanted(self) -> bool:
        return self.progress is not None or self.on_snapshot is not None

    def __call__(self, snap: ProgressSnapshot) -> None:
        with self._lock:
            if snap.current < self._last:
                return
            self._last = snap.current
            if self.progress is not None:
                self.progress(snap.current, snap.total, snap.file_name, snap.file_index, snap.total_files)
            if self.on_snapshot is not None:
                self.on_snapshot(snap)
