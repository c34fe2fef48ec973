"""A gzip-compressed newc cpio archive, written in Python (the kernel's initramfs format)."""

from __future__ import annotations

import gzip
import stat
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CpioEntry:
    """One archive member: a directory (``data`` None, no ``link``), a file, or a symlink (``link``)."""

    name: str
    data: bytes | None = None
    mode: int = 0o755
    link: str | None = None


def _header(ino: int, mode: int, size: int, name: bytes) -> bytes:
    fields = [ino, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, len(name) + 1, 0]
    return b"070701" + b"".join(f"{value:08x}".encode() for value in fields)


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


def cpio_newc(entries: list[CpioEntry]) -> bytes:
    """The uncompressed archive, directories and files in the order given, ending with TRAILER!!!."""
    out = bytearray()
    for ino, entry in enumerate([*entries, CpioEntry("TRAILER!!!", b"", 0)], start=1):
        name = entry.name.encode()
        if entry.link is not None:
            body, mode = entry.link.encode(), stat.S_IFLNK | 0o777
        elif entry.data is None:
            body, mode = b"", stat.S_IFDIR | entry.mode
        else:
            body, mode = entry.data, (stat.S_IFREG | entry.mode) if entry.name != "TRAILER!!!" else 0
        head = _header(ino, mode, len(body), name) + name + b"\0"
        out += head + _pad(len(head)) + body + _pad(len(body))
    return bytes(out)


def write_initramfs(path: Path, entries: list[CpioEntry]) -> Path:
    path.write_bytes(gzip.compress(cpio_newc(entries), compresslevel=6))
    return path
