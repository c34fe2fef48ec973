"""The fixed-VHD footer at the end of every managed disk's page blob, read and checked.

A managed disk is a fixed VHD: the guest's bytes, then a 512-byte footer. qemu's vpc driver takes the disk's
size from the footer only for the creator applications it knows and otherwise from the CHS geometry, which
can be smaller than the disk; so the footer is checked here (cookie, checksum, fixed type) and its current
size must equal the blob's length less the footer and the size Resource Manager reports, or the run fails.
"""

from __future__ import annotations

import struct

from pydantic import BaseModel

from ...errors import IntegrityError

FOOTER = 512
_FIXED = 2


class VhdFooter(BaseModel):
    creator: str
    current_size: int
    disk_type: int


def parse_footer(data: bytes, where: str) -> VhdFooter:
    if len(data) != FOOTER or data[:8] != b"conectix":
        raise IntegrityError(f"{where} does not end in a VHD footer (no 'conectix' cookie); it is not a managed disk's blob")
    (checksum,) = struct.unpack(">I", data[64:68])
    expected = ~sum(data[:64] + data[68:]) & 0xFFFFFFFF
    if checksum != expected:
        raise IntegrityError(f"{where}: the VHD footer's checksum is wrong ({checksum:#x}, expected {expected:#x}); it is damaged")
    (current_size,) = struct.unpack(">Q", data[48:56])
    (disk_type,) = struct.unpack(">I", data[60:64])
    if disk_type != _FIXED:
        raise IntegrityError(f"{where} is a VHD of type {disk_type}, not a fixed VHD (2) as managed disks are")
    creator = data[28:32].decode("latin-1")
    return VhdFooter(creator=creator, current_size=current_size, disk_type=disk_type)


def check_size(footer: VhdFooter, blob_length: int, disk_size: int | None, where: str) -> int:
    """The disk's virtual size (blob length less the footer), once the footer and Azure agree on it."""
    size = blob_length - FOOTER
    if size <= 0 or size % FOOTER:
        raise IntegrityError(f"{where} is {blob_length} bytes long, which no fixed VHD is")
    if footer.current_size != size:
        raise IntegrityError(
            f"{where}: its VHD footer (creator {footer.creator!r}) says {footer.current_size} bytes but the blob holds "
            f"{size} bytes before the footer; refusing a disk whose size is not certain"
        )
    if disk_size is not None and disk_size != size:
        raise IntegrityError(
            f"{where} holds {size} bytes before its footer but Azure reports a {disk_size}-byte disk; refusing a "
            "disk that would come out truncated or padded"
        )
    return size
