"""Transfer progress as a Prefect progress artifact and periodic log lines."""

from __future__ import annotations

import contextvars
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
        # Snapshots arrive on the transfer engine's worker threads, which do not inherit the task's
        # context (its settings, hence its API URL): each update runs in a copy of this one.
        self._context = contextvars.copy_context()
        self.logger = logger
        self.log_every = log_every
        self._last_log = 0.0

    def _update(self, progress: float) -> None:
        self._context.copy().run(self._send, progress)

    def _send(self, progress: float) -> None:
        # Progress is a side channel: a server that is briefly away (restarting) must not fail the transfer.
        try:
            update_progress_artifact(self.artifact_id, progress=progress)
        except Exception as error:  # noqa: BLE001
            self.logger.warning("could not update the progress artifact (%s); the transfer goes on", type(error).__name__)

    def __call__(self, snapshot: ProgressSnapshot) -> None:
        self._update(round(100 * snapshot.fraction, 2))
        now = time.monotonic()
        if now - self._last_log >= self.log_every or snapshot.current >= snapshot.total:
            self._last_log = now
            # In the task's context too: Prefect's log handler started from a bare worker thread would send to no
            # API (its settings are the context's), then refuse every later record of the process.
            self._context.copy().run(self._log, snapshot)

    def _log(self, snapshot: ProgressSnapshot) -> None:
        eta = "?" if snapshot.eta_seconds is None else f"{snapshot.eta_seconds:.0f}s"
        self.logger.info(
            "%s [%d/%d]: %s of %s (%.0f%%) at %s/s, ETA %s",
            snapshot.file_name, snapshot.file_index, snapshot.total_files, _mib(snapshot.current),
            _mib(snapshot.total), 100 * snapshot.fraction, _mib(snapshot.bytes_per_second), eta,
        )

    def done(self) -> None:
        self._update(100.0)
