"""Transfer progress as a Prefect progress artifact and periodic log lines."""

from __future__ import annotations

import logging
import re
import time

from prefect.artifacts import create_progress_artifact, update_progress_artifact

from hyperexport.progress import ProgressSnapshot


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys allow only lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")[:100]


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


class ArtifactProgress:
    """Feeds the engine's progress snapshots (already throttled to about 1/s) into one artifact."""

    def __init__(self, key: str, description: str, logger: logging.Logger | logging.LoggerAdapter, log_every: float = 10.0):
        self.artifact_id = create_progress_artifact(progress=0.0, key=key, description=description)
        self.logger = logger
        self.log_every = log_every
        self._last_log = 0.0

    def __call__(self, snapshot: ProgressSnapshot) -> None:
        update_progress_artifact(self.artifact_id, progress=round(100 * snapshot.fraction, 2))
        now = time.monotonic()
        if now - self._last_log >= self.log_every or snapshot.current >= snapshot.total:
            self._last_log = now
            eta = "?" if snapshot.eta_seconds is None else f"{snapshot.eta_seconds:.0f}s"
            self.logger.info(
                "%s [%d/%d]: %s of %s (%.0f%%) at %s/s, ETA %s",
                snapshot.file_name, snapshot.file_index, snapshot.total_files, _mib(snapshot.current),
                _mib(snapshot.total), 100 * snapshot.fraction, _mib(snapshot.bytes_per_second), eta,
            )

    def done(self) -> None:
        update_progress_artifact(self.artifact_id, progress=100.0)
