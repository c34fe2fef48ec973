"""Extract an OVA (a tar archive) without letting any entry escape its directory."""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path

from .errors import InvalidInputError, UnsafeArchiveError
from .fsutil import ensure_free_space


def _check_member(member: tarfile.TarInfo, target: Path, ova: Path) -> None:
    name = member.name
    if os.path.isabs(name) or ".." in Path(name).parts:
        raise UnsafeArchiveError(
            f"{ova} holds entry {name!r}, which would be written outside the extraction directory; "
            "refusing the whole archive (it may be malicious). Re-export the OVA from the source hypervisor."
        )
    if member.issym() or member.islnk():
        link_target = (target / Path(name).parent / member.linkname).resolve() if member.issym() else (target / member.linkname).resolve()
        if not link_target.is_relative_to(target.resolve()):
            raise UnsafeArchiveError(
                f"{ova} holds link {name!r} -> {member.linkname!r}, which points outside the extraction directory; "
                "refusing the whole archive. Re-export the OVA from the source hypervisor."
            )
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise UnsafeArchiveError(f"{ova} holds {name!r}, a device or fifo; an OVA holds only files. Refusing it.")


def extract_ova(ova: Path, target: Path) -> list[Path]:
    """Check every entry first, then extract into ``target``; nothing is written if any entry is unsafe."""
    try:
        with tarfile.open(ova, "r:*") as archive:
            members = archive.getmembers()
            for member in members:
                _check_member(member, target, ova)
            ensure_free_space(target, sum(m.size for m in members), what=f"extracting {ova.name}")
            staging = target.with_name(target.name + ".extracting")
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            archive.extractall(staging, filter="data")
    except tarfile.TarError as error:
        raise InvalidInputError(f"{ova} is not a readable OVA (tar) archive: {error}; re-download or re-export it") from None
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    return [target / m.name for m in members if m.isfile()]
