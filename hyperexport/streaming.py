"""One pass from a raw source to its output: the disk is written into ``<output>/<id>.<qcow2|raw>`` as it
downloads, so there is no staged copy to convert afterwards and no second read of anything.

Only a source whose bytes are the guest's disk (raw) streams: its first and last bytes are read first, and
anything with a container format (VMDK, VHD's footer, VHDX, qcow2, VDI) or that is not a disk image at all
goes through the staged download and the converter as before. A qcow2 output is written through NBD
(``transfer.qcow2_target``); a raw output is the download's own file. The proof is the stream's: every range
is read back once from the output and compared with the digest its bytes arrived with, and the source's own
checksums are checked over the same read (``StreamedDisk``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from .formats import HEAD_BYTES, TAIL_BYTES, format_of, refuse_mislabelled
from .image_safety import QCOW2_HEADER_BYTES, check_qcow2_header_bytes
from .models import DiskFormat, DiskSource, StagedDisk, StreamedDisk, TargetFormat
from .models.conversion import ConverterName, ConvertOptions
from .transfer import ByteRangeSource, TransferOptions, download
from .transfer.source import SourceInfo
from .transfer.retry import call_with_retry
from .transfer.target import Layout

log = logging.getLogger(__name__)
SECTOR = 512


def stream_blockers(convert: bool, converter: ConverterName, options: ConvertOptions) -> list[str]:
    """Why a run cannot stream its disks into their outputs (empty: it can)."""
    blockers = []
    target = options.target_format
    if not convert:
        blockers.append("it does not convert (add --convert)")
    if converter is not ConverterName.qemu_img:
        blockers.append(f"the {converter.value} converter reads a finished disk (use --converter qemu-img)")
    if target not in (TargetFormat.qcow2, TargetFormat.raw):
        blockers.append(f"a {target.value} output is written by qemu-img convert only (use --format qcow2 or raw)")
    if options.fix_guest:
        blockers.append("guest fixes change a finished disk (leave out --fix)")
    if options.dry_run:
        blockers.append("a dry run writes no output")
    if options.compression_level:
        blockers.append("a compressed qcow2 is written by qemu-img convert only (leave out --compress)")
    if options.custom_args:
        blockers.append("custom qemu-img arguments need qemu-img convert")
    return blockers


def _read(source: ByteRangeSource, info: SourceInfo, offset: int, length: int, options: TransferOptions) -> bytes:
    """Bytes ``[offset, offset + length)``, asked for as the source takes them: in whole blocks when it has a
    block size (an EBS snapshot reads 512 KiB blocks only)."""
    block = info.block_size or 1
    start = offset - offset % block
    end = min(info.size, -(-(offset + length) // block) * block)

    def once() -> bytes:
        return b"".join(bytes(piece) for piece in source.read_range(start, end - start))

    return call_with_retry(once, options)[offset - start : offset - start + length]


def sniff_format(source: ByteRangeSource, options: TransferOptions, name: str) -> tuple[DiskFormat, int] | None:
    """The format and size of the disk behind ``source``, from its first and last bytes; None when the source
    cannot read ranges (it is then staged as usual). Text and web pages are refused here, and so is a qcow2
    that names a backing or data file, before the download."""
    configure = getattr(source, "configure", None)
    if callable(configure):
        configure(options)
    info = call_with_retry(source.describe, options)
    if not info.supports_ranges:
        return None
    head = _read(source, info, 0, min(HEAD_BYTES, info.size), options) if info.size else b""
    tail = _read(source, info, info.size - TAIL_BYTES, TAIL_BYTES, options) if info.size >= TAIL_BYTES else b""
    fmt = format_of(head, tail, info.size, name)
    if fmt is DiskFormat.qcow2:  # only then is the longer read worth it
        check_qcow2_header_bytes(_read(source, info, 0, min(QCOW2_HEADER_BYTES, info.size), options), name)
    return fmt, info.size


def stream_disk(
    disk: DiskSource,
    source: Any,
    output: Path,
    options: TransferOptions,
    *,
    progress: Any = None,
    on_snapshot: Any = None,
    file_index: int = 1,
    total_files: int = 1,
) -> StagedDisk | None:
    """Stream ``disk`` into ``output`` when it is raw; None (nothing read but its first and last bytes) when
    it must be staged and converted instead."""
    sniffed = sniff_format(source, options, disk.file_name)
    if sniffed is None or sniffed[0] is not DiskFormat.raw or sniffed[1] % SECTOR:
        why = "not seekable" if sniffed is None else sniffed[0].value if sniffed[0] is not DiskFormat.raw else (
            "not a whole number of sectors (a qcow2's size is)")  # fmt: skip
        log.info("%s is %s: staged and converted, not streamed", disk.file_name, why)
        return None
    refuse_mislabelled(disk.format, DiskFormat.raw, disk.file_name)
    layout: Layout = "qcow2" if output.suffix == ".qcow2" else "raw"
    started = time.monotonic()
    result = download(
        source, output, options, progress=progress, on_snapshot=on_snapshot, file_index=file_index,
        total_files=total_files, into=layout,
    )  # fmt: skip
    return StagedDisk(
        id=disk.id,
        path=output,
        format=DiskFormat(layout),
        size_bytes=output.stat().st_size,
        virtual_size_bytes=result.size,
        sha256=result.checksum,
        disk_type=disk.disk_type,
        boot_order_hint=disk.boot_order_hint,
        label=disk.label,
        download_seconds=time.monotonic() - started,
        bytes_fetched=result.bytes_fetched,
        streamed=StreamedDisk(
            layout=layout, ranges_checked=result.read_back_ranges, bytes_checked=result.read_back_bytes,
            bytes_zero=result.bytes_zero_unwritten,
            bytes_unchecked=result.read_back_unchecked_bytes, bytes_sparse=result.bytes_sparse,
            source_checksums=result.verified_checksums,
        ),  # fmt: skip
    )
