"""Small helpers shared by the transfer tests."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hyperexport.transfer import TransferOptions

KiB = 1024
MiB = 1024 * KiB


def fast_options(**overrides) -> TransferOptions:
    """Small ranges, short backoffs and timeouts: failures show up in milliseconds."""
    base = dict(
        connections=4,
        chunk_size=256 * KiB,
        read_size=64 * KiB,
        backoff=0.01,
        backoff_max=0.05,
        read_timeout=5.0,
        connect_timeout=2.0,
        progress_interval=0.0,
    )
    base.update(overrides)
    return TransferOptions(**base)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leftovers(dest: Path) -> list[str]:
    """Names in dest's directory that start with dest's name (partial, sidecar...)."""
    return sorted(p.name for p in dest.parent.iterdir() if p.name.startswith(dest.name))


REPO = Path(__file__).resolve().parents[2]


def sigkill_mid_download(server, child_code: str, url: str, dest: Path, size: int, *, fraction: float = 0.4) -> None:
    """Run ``child_code`` (a download of ``url`` to ``dest``) in a process of its own and SIGKILL it once the
    server has sent ``fraction`` of ``size`` bytes."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen([sys.executable, "-c", child_code, url, str(dest)], cwd=REPO, env=env)
    try:
        deadline = time.monotonic() + 60
        while server.stats.bytes_served < size * fraction:
            assert child.poll() is None, "the download finished or died before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL
