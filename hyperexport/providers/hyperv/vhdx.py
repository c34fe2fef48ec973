"""Whether a VHDX file has a parent (a differencing disk, .avhdx), read from its own metadata: the host's word
(Get-VHD) is checked again against the bytes before a download starts, because reading a differencing disk
alone would hand over an old state of the disk (qemu-img does not read VHDX chains).

The layout (MS-VHDX 2.2): the region table at 192 KiB lists the metadata region; its table (signature
``metadata``) lists the File Parameters item, whose second 32-bit word has HasParent as bit 1.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from ...errors import UnsafeImageError

REGION_TABLE = 192 * 1024
METADATA_REGION = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le
FILE_PARAMETERS = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B").bytes_le
HAS_PARENT = 0x02
MAX_ENTRIES = 2047  # both tables hold at most this many entries (64 KiB)


def has_parent(read: Callable[[int, int], bytes], size: int, name: str) -> bool:
    """``read(offset, length)`` reads the file; UnsafeImageError when it is no readable VHDX."""
    if size < REGION_TABLE + 65536 or read(0, 8) != b"vhdxfile":
        raise UnsafeImageError(f"{name} is not a VHDX file (no vhdxfile signature); refusing it")
    regions = read(REGION_TABLE, 65536)
    count = int.from_bytes(regions[8:12], "little")
    if regions[:4] != b"regi" or count > MAX_ENTRIES:
        raise UnsafeImageError(f"{name} has no valid VHDX region table; refusing it")
    for i in range(count):
        entry = regions[16 + 32 * i : 48 + 32 * i]
        if entry[:16] != METADATA_REGION:
            continue
        start, length = int.from_bytes(entry[16:24], "little"), int.from_bytes(entry[24:28], "little")
        if start + min(length, 65536) > size or length < 65536:
            raise UnsafeImageError(f"{name}: its VHDX metadata region lies outside the file; refusing it")
        table = read(start, 65536)
        items = int.from_bytes(table[10:12], "little")
        if table[:8] != b"metadata" or items > MAX_ENTRIES:
            raise UnsafeImageError(f"{name} has no valid VHDX metadata table; refusing it")
        for j in range(items):
            item = table[32 + 32 * j : 64 + 32 * j]
            if item[:16] == FILE_PARAMETERS:
                offset = int.from_bytes(item[16:20], "little")
                if offset + 8 > length or start + offset + 8 > size:
                    raise UnsafeImageError(f"{name}: its VHDX file parameters lie outside the metadata region; refusing it")
                return bool(read(start + offset + 4, 4)[0] & HAS_PARENT)
    raise UnsafeImageError(f"{name} has no VHDX file parameters; refusing it")
