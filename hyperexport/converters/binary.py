"""Find a converter binary and make sure it can run."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ..errors import ConverterNotFoundError

# Where pip, pipx and distributions put console scripts, after PATH.
_COMMON_DIRS = (
    Path(sys.prefix) / "bin",
    Path.home() / ".local" / "bin",
    Path("/usr/local/bin"),
    Path("/usr/bin"),
    Path("/opt/hyper2kvm/bin"),
)


def validate_binary(path: Path) -> Path:
    """Raise ConverterNotFoundError naming what is wrong with ``path``."""
    if not path.exists():
        raise ConverterNotFoundError(f"converter binary {path} does not exist; install it (pip install hyper2kvm) or fix the path")
    if path.is_dir():
        raise ConverterNotFoundError(f"converter binary {path} is a directory; point at the executable inside it")
    if not os.access(path, os.X_OK):
        raise ConverterNotFoundError(f"converter binary {path} is not executable; run 'chmod +x {path}' or reinstall it")
    return path


def auto_detect_binary(name: str, extra_dirs: tuple[Path, ...] = ()) -> Path:
    """PATH first, then the usual install locations."""
    found = shutil.which(name)
    if found:
        return Path(found)
    for directory in (*extra_dirs, *_COMMON_DIRS):
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    searched = ", ".join(str(d) for d in (*extra_dirs, *_COMMON_DIRS))
    raise ConverterNotFoundError(
        f"{name} was not found on PATH or in {searched}; install it with 'pip install {name}' "
        "or give its path (--converter-binary / ConverterConfig.binary_path)"
    )
