"""The 512-byte footer that ends every VHD, read without trusting it.

A fixed VHD is the guest's bytes followed by the footer; a dynamic or differencing one starts with a copy of
the footer and keeps its blocks behind a table. The footer says which (its type), how large the disk is (its
current size) and who wrote it (its creator), under a ones' complement checksum.
"""

from __future__ import annotations

import struct

from pydantic import BaseModel

FOOTER = 512
COOKIE = b"conectix"
FIXED = 2


class VhdFooter(BaseModel):
    creator: str
    current_size: int
    disk_type: int
    checksum: int
    expected_checksum: int

    @property
    def intact(self) -> bool:
        return self.checksum == self.expected_checksum


def read_footer(data: bytes) -> VhdFooter | None:
    """The footer in ``data`` (512 bytes), or None when they are not one (no cookie)."""
    if len(data) != FOOTER or data[:8] != COOKIE:
        return None
    (checksum,) = struct.unpack(">I", data[64:68])
    (current_size,) = struct.unpack(">Q", data[48:56])
    (disk_type,) = struct.unpack(">I", data[60:64])
    return VhdFooter(
        creator=data[28:32].decode("latin-1"), current_size=current_size, disk_type=disk_type, checksum=checksum,
        expected_checksum=~sum(data[:64] + data[68:]) & 0xFFFFFFFF,
    )  # fmt: skip


def fixed_data_size(head: bytes, tail: bytes, size: int) -> int | None:
    """How many bytes of guest disk a ``size``-byte VHD holds before its footer (``tail``, its last 512 bytes),
    when it is a fixed VHD beyond doubt: an intact footer of the fixed type whose current size is exactly the
    bytes before it, and no footer copy at the start (``head``) as dynamic VHDs have. None otherwise."""
    footer = read_footer(tail)
    data = size - FOOTER
    if footer is None or not footer.intact or footer.disk_type != FIXED or head.startswith(COOKIE):
        return None
    if data <= 0 or data % FOOTER or footer.current_size != data:
        return None
    return data
