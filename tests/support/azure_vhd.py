"""Fixed-VHD footers as Azure writes them (creator "win "), and ones from creators qemu does not know."""

from __future__ import annotations

import struct
import time
import uuid

VHD_EPOCH = 946684800  # 2000-01-01


def chs(size: int) -> tuple[int, int, int]:
    """The VHD specification's CHS geometry for ``size`` bytes (what qemu falls back on for unknown creators)."""
    sectors = min(size // 512, 65535 * 16 * 255)
    if sectors >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cth = sectors // spt
    else:
        spt = 17
        cth = sectors // spt
        heads = max((cth + 1023) // 1024, 4)
        if cth >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cth = sectors // spt
        if cth >= heads * 1024:
            spt, heads = 63, 16
            cth = sectors // spt
    return cth // heads, heads, spt


def footer(size: int, creator: bytes = b"win ") -> bytes:
    cylinders, heads, spt = chs(size)
    data = bytearray(512)
    data[0:8] = b"conectix"
    struct.pack_into(">I", data, 8, 2)  # features: reserved bit
    struct.pack_into(">I", data, 12, 0x00010000)
    struct.pack_into(">Q", data, 16, 0xFFFFFFFFFFFFFFFF)  # fixed disks have no dynamic header
    struct.pack_into(">I", data, 24, int(time.time()) - VHD_EPOCH)
    data[28:32] = creator
    struct.pack_into(">I", data, 32, 0x000A0000)
    data[36:40] = b"Wi2k"
    struct.pack_into(">Q", data, 40, size)
    struct.pack_into(">Q", data, 48, size)
    struct.pack_into(">HBB", data, 56, cylinders, heads, spt)
    struct.pack_into(">I", data, 60, 2)
    data[68:84] = uuid.uuid4().bytes
    struct.pack_into(">I", data, 64, ~sum(data) & 0xFFFFFFFF)
    return bytes(data)
