"""Small helpers shared by the transfer tests."""

from __future__ import annotations

import hashlib
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
