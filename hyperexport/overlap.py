"""Sources and outputs never overlap: a run must not overwrite, delete or compare-with-itself any input.

What a run writes in its output directory: ``<disk id>.<format>`` (and its
partial file), ``migration-report.json``, the staging directory ``source/``
and the converter's work directory ``hyper2kvm/``. A source that is one of
these, or lives under the directories the run rewrites and removes, would be
replaced on success and deleted on failure; it is refused before any work.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from .errors import UnsafeImageError

FIELD = "export.output_dir"
RUN_DIRS = ("source", "hyper2kvm")
REPORT = "migration-report.json"
_OUTPUT_FORMATS = ("qcow2", "raw", "vmdk")
_PROVIDER_OUTPUT = re.compile(r"^\.?disk-\d+\.(qcow2|raw|vmdk)(\..*)?$")


def _is_output_name(name: str, ids: Iterable[str] | None) -> bool:
    if name == REPORT or (name.startswith(f".{REPORT}.")):
        return True
    if ids is None:
        return bool(_PROVIDER_OUTPUT.match(name))
    return any(name.lstrip(".").startswith(f"{i}.{fmt}") for i in ids for fmt in _OUTPUT_FORMATS)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def check_no_overlap(output_dir: Path, sources: Iterable[Path], ids: Iterable[str] | None = None) -> None:
    """Refuse an output directory whose files would be, or would remove, any of ``sources``.

    ``ids``: the disk ids whose outputs the run writes; None: any ``disk-N`` (provider runs).
    """
    ids = list(ids) if ids is not None else None
    out = output_dir.absolute()
    out_real = out.resolve()
    for source in sources:
        given = Path(source).absolute()
        for candidate in {given, given.resolve()}:
            if candidate in (out, out_real):
                raise UnsafeImageError(f"the output directory {output_dir} is the source {source} itself; choose another output directory", field=FIELD)
            for base in {out, out_real}:
                for run_dir in RUN_DIRS:
                    if candidate.is_relative_to(base / run_dir):
                        raise UnsafeImageError(
                            f"source {source} is inside {base / run_dir}, which the run rewrites and removes; "
                            "move the source out of it or choose another output directory", field=FIELD,
                        )
                if candidate.parent == base and _is_output_name(candidate.name, ids):
                    raise UnsafeImageError(
                        f"source {source} is named like a file the run writes in {output_dir} ({candidate.name}); the "
                        "conversion would overwrite it and a failed run would delete it. Choose another output directory.",
                        field=FIELD,
                    )
    identities = {i for i in (_identity(Path(s)) for s in sources) if i is not None}
    if not identities or not out.is_dir():
        return
    for entry in out.iterdir():
        if (_is_output_name(entry.name, ids) or entry.name in RUN_DIRS) and _identity(entry) in identities:
            raise UnsafeImageError(
                f"{entry} in the output directory is the same file as a source (a hard link or symlink); "
                "the run would overwrite or delete it. Choose another output directory.", field=FIELD,
            )


def same_file(a: Path, b: Path) -> bool:
    if Path(a).absolute() == Path(b).absolute() or Path(a).resolve() == Path(b).resolve():
        return True
    ia, ib = _identity(Path(a)), _identity(Path(b))
    return ia is not None and ia == ib
