"""Filesystem helpers: atomic writes, partial-file names, free-space checks."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import InsufficientSpaceError

PARTIAL_SUFFIX = ".part"


def partial_path(final: Path) -> Path:
    """Where a file is written before it is renamed to ``final``."""
    return final.with_name(final.name + PARTIAL_SUFFIX)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(partial: Path, final: Path) -> Path:
    """fsync ``partial`` and rename it to ``final`` atomically."""
    with open(partial, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, final)
    fsync_dir(final.parent)
    return final


@contextlib.contextmanager
def atomic_output(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it into place only on success."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=PARTIAL_SUFFIX, dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        commit(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(final: Path, data: object) -> Path:
    with atomic_output(final) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    return final


def free_bytes(directory: Path) -> int:
    probe = directory
    while not probe.exists():
        probe = probe.parent
    return shutil.disk_usage(probe).free


def ensure_free_space(directory: Path, needed: int, *, what: str) -> None:
    """Fail before any bytes move when ``directory`` cannot hold ``needed`` bytes."""
    available = free_bytes(directory)
    if needed > available:
        raise InsufficientSpaceError(
            f"{what} needs {needed / 2**30:.2f} GiB in {directory}, but only "
            f"{available / 2**30:.2f} GiB is free. Free some space or choose another output directory (--output)."
        )
