"""The fixed-VHD footer at the end of every managed disk's page blob, read and checked.

A managed disk is a fixed VHD: the guest's bytes, then a 512-byte footer. qemu's vpc driver takes the disk's
size from the footer only for the creator applications it knows and otherwise from the CHS geometry, which
can be smaller than the disk; so the footer is checked here (cookie, checksum, fixed type) and its current
size must equal the blob's length less the footer and the size Resource Manager reports, or the run fails.
"""

from __future__ import annotations

from ...errors import IntegrityError
from ...vhd_footer import FIXED, FOOTER, VhdFooter, read_footer

__all__ = ["FOOTER", "VhdFooter", "check_size", "parse_footer"]


def parse_footer(data: bytes, where: str) -> VhdFooter:
    footer = read_footer(data)
    if footer is None:
        raise IntegrityError(f"{where} does not end in a VHD footer (no 'conectix' cookie); it is not a managed disk's blob")
    if not footer.intact:
        raise IntegrityError(
            f"{where}: the VHD footer's checksum is wrong ({footer.checksum:#x}, expected "
            f"{footer.expected_checksum:#x}); it is damaged"
        )
    if footer.disk_type != FIXED:
        raise IntegrityError(f"{where} is a VHD of type {footer.disk_type}, not a fixed VHD (2) as managed disks are")
    return footer


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
