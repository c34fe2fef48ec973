"""Path and URL containment: every name that comes from an image, an OVF or a manifest stays where it belongs.

A name written by someone else (an OVF ``href``, a VMDK extent, a manifest's
``local_path``) may be absolute, climb out with ``..``, be a Windows drive
path or a URL, or reach a symlink that points elsewhere. Each of these is
refused before any byte is read or written: the run reads and writes only
inside its own directories.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit, urlunsplit

from .errors import UnsafeImageError

_DRIVE = re.compile(r"^[A-Za-z]:")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def file_kind(mode: int) -> str:
    """What a non-regular file is, for messages: 'a FIFO (named pipe)', 'a directory', ..."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def require_regular_file(
    path: Path, what: str, *, field: str | None = None, follow_symlinks: bool = True, single_link: bool = False
) -> os.stat_result:
    """``path`` is a regular file (after symlinks when ``follow_symlinks``), else UnsafeImageError; no byte is read.
    ``single_link``: for a file that untrusted input names (an extent, an OVF href), refuse a second hard link: the
    name inside the image's directory may be another file of this host (hard links cross directories)."""
    try:
        st = os.stat(path, follow_symlinks=follow_symlinks)
    except FileNotFoundError:
        from .errors import SourceNotFoundError

        raise SourceNotFoundError(f"{what} {path} does not exist; check the path", field=field) from None
    if not follow_symlinks and stat.S_ISLNK(st.st_mode):
        raise UnsafeImageError(
            f"{what} {path} is a symbolic link; an image may name only regular files inside its own directory, "
            "so a link that could point anywhere on this host is refused. Copy the real file there instead.",
            field=field,
        )
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeImageError(
            f"{what} {path} is {file_kind(st.st_mode)}, not a regular file; only regular files are disk images "
            "(a device or pipe would be read without end). Point at an image file.",
            field=field,
        )
    if single_link and st.st_nlink > 1:
        raise UnsafeImageError(
            f"{what} {path} has {st.st_nlink} hard links: it may be another file of this host under a second name, "
            "so it is refused. Copy it (cp, not ln) so that the image's directory holds its own file.",
            field=field,
        )
    return st


def check_relative_name(name: str, what: str, *, plain: bool = False, field: str | None = None) -> PurePosixPath:
    """``name`` as a safe relative path: not absolute, no ``..``, no drive letter, no URL, no NUL, no backslash.

    ``plain``: a bare file name, no directory part at all (VMDK extents, staged names).
    """
    reason = None
    if not name or name.strip() != name:
        reason = "is empty or has surrounding blanks"
    elif "\0" in name:
        reason = "holds a NUL byte"
    elif "\\" in name:
        reason = "holds a backslash (a Windows path)"
    elif name.startswith("/"):
        reason = "is an absolute path"
    elif _DRIVE.match(name):
        reason = "is a Windows drive path"
    elif _SCHEME.match(name):
        reason = "is a URL or a qemu protocol string, not a file name"
    elif ".." in PurePosixPath(name).parts:
        reason = "climbs out of its directory with '..'"
    elif plain and ("/" in name or name in (".", "..")):
        reason = "has a directory part; only a plain file name beside the image is accepted"
    if reason:
        raise UnsafeImageError(
            f"{what} {name!r} {reason}; it could make hyperexport read or write a file outside the image's "
            "own directory, so the image is refused. Re-export it from the source hypervisor.",
            field=field,
        )
    return PurePosixPath(name)


def contained(base: Path, name: str, what: str, *, plain: bool = False, field: str | None = None) -> Path:
    """``base / name``, refused unless it stays inside ``base`` once every symlink is resolved."""
    check_relative_name(name, what, plain=plain, field=field)
    root = base.resolve()
    target = (base / name).resolve()
    if not target.is_relative_to(root):
        raise UnsafeImageError(
            f"{what} {name!r} resolves to {target}, outside {root} (through a symbolic link); refusing it. "
            "Copy the real file beside the descriptor instead of linking to it.",
            field=field,
        )
    return base / name


def public_url(url: str) -> str:
    """``scheme://host[:port]/path``: no user, password, query or fragment (safe for reports and results)."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return urlunsplit((parts.scheme, f"{host}:{port}" if port else host, parts.path, "", ""))


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    try:
        port = parts.port or default
    except ValueError:
        port = None
    return parts.scheme, (parts.hostname or "").lower(), port


def same_origin(a: str, b: str) -> bool:
    return origin(a) == origin(b)
