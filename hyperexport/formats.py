"""Recognise a disk image's format from its bytes, not from qemu-img's guess.

qemu-img's probe reads only the start of a file, so a fixed-size VHD (whose
only marker is a 512-byte footer) looks like raw to it, and converting it as
raw leaves the footer inside the guest's disk. We read the footer ourselves.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import InvalidInputError, SourceNotFoundError
from .models import DiskFormat

_VMDK_DESCRIPTOR = b"# Disk DescriptorFile"


def detect_format(path: Path) -> DiskFormat:
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
            size = os.fstat(handle.fileno()).st_size
            tail = b""
            if size >= 512:
                handle.seek(size - 512)
                tail = handle.read(512)
    except FileNotFoundError:
        raise SourceNotFoundError(f"disk image {path} does not exist; check the path") from None
    except IsADirectoryError:
        raise InvalidInputError(f"{path} is a directory, not a disk image; point at the image or at an .ovf file") from None
    if head.startswith(b"QFI\xfb"):
        return DiskFormat.qcow2
    if head.startswith(b"KDMV") or head.lstrip().startswith(_VMDK_DESCRIPTOR) or _VMDK_DESCRIPTOR in head[:64]:
        return DiskFormat.vmdk
    if head.startswith(b"vhdxfile"):
        return DiskFormat.vhdx
    if head.startswith(b"conectix") or tail.startswith(b"conectix"):
        return DiskFormat.vhd
    if len(head) >= 0x44 and head[0x40:0x44] == b"\x7f\x10\xda\xbe":
        return DiskFormat.vdi
    return DiskFormat.raw


def vmdk_extents(descriptor: Path) -> list[str]:
    """File names of the extents a text VMDK descriptor refers to (flat and split VMDKs)."""
    names = []
    try:
        text = descriptor.read_bytes()[:64 * 1024].decode("utf-8", errors="replace")
    except OSError:
        return names
    if _VMDK_DESCRIPTOR not in text.encode():
        return names
    for line in text.splitlines():
        parts = line.split('"')
        if len(parts) >= 3 and line.split()[0] in ("RW", "RDONLY", "NOACCESS"):
            names.append(parts[1])
    return names
