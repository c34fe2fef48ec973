"""One pass from a raw source to its output: the disk is written into ``<output>/<id>.<qcow2|raw>`` as it
downloads, so there is no staged copy to convert afterwards and no second read of anything.

Only a source whose bytes are the guest's disk streams: its first and last bytes are read first. A raw disk
streams whole; a fixed VHD streams the bytes before its footer (``streamable_length`` says when); anything else
with a container format (VMDK, dynamic VHD, VHDX, qcow2, VDI) or that is not a disk image at all goes through
the staged download and the converter as before. A qcow2 output is written through NBD
(``transfer.qcow2_target``); a raw output is the download's own file. The proof is the stream's: every range
is read back once from the output and compared with the digest its bytes arrived with, and the source's own
checksums are checked over the same read (``StreamedDisk``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, NamedTuple

from .formats import HEAD_BYTES, TAIL_BYTES, format_of, refuse_mislabelled
from .image_safety import QCOW2_HEADER_BYTES, check_qcow2_header_bytes
from .models import DiskFormat, DiskSource, StagedDisk, StreamedDisk, TargetFormat
from .models.conversion import ConverterName, ConvertOptions
from .transfer import ByteRangeSource, TransferOptions, download
from .transfer.prefix import PrefixSource
from .transfer.retry import call_with_retry
from .transfer.source import SourceInfo
from .transfer.target import Layout
from .vhd_footer import fixed_data_size

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


class Sniffed(NamedTuple):
    format: DiskFormat
    info: SourceInfo
    head: bytes
    tail: bytes


def sniff_format(source: ByteRangeSource, options: TransferOptions, name: str) -> Sniffed | None:
    """The format of the disk behind ``source``, from its first and last bytes; None when the source
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
    return Sniffed(fmt, info, head, tail)


def streamable_length(sniffed: Sniffed | None) -> tuple[int | None, str]:
    """How many bytes of the source are the guest's disk, written as they arrive; or None and why the disk
    is staged and converted instead. A raw disk is all of it; a fixed VHD beyond doubt (``vhd_footer``) is
    what comes before its footer, unless the source offers whole-file checksums, which only the staged copy
    can be checked against."""
    if sniffed is None:
        return None, "not seekable"
    size, block = sniffed.info.size, sniffed.info.block_size or 1
    if sniffed.format is DiskFormat.vhd:
        data = fixed_data_size(sniffed.head, sniffed.tail, size)
        if data is None:
            return None, "a VHD that is not a fixed one with an intact footer giving its exact size"
        if sniffed.info.checksums:
            return None, f"a fixed VHD whose source offers a {'/'.join(sorted(sniffed.info.checksums))} of the whole file"
        return (data, "") if data % block == 0 else (None, f"a fixed VHD whose data are not whole {block}-byte blocks")
    if sniffed.format is not DiskFormat.raw:
        return None, sniffed.format.value
    if size % SECTOR:
        return None, "not a whole number of sectors (a qcow2's size is)"
    return size, ""


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
    """Stream ``disk`` into ``output`` when it is raw or a fixed VHD; None (nothing read but its first and last
    bytes) when it must be staged and converted instead."""
    sniffed = sniff_format(source, options, disk.file_name)
    length, why = streamable_length(sniffed)
    if sniffed is None or length is None:
        log.info("%s is %s: staged and converted, not streamed", disk.file_name, why)
        return None
    refuse_mislabelled(disk.format, sniffed.format, disk.file_name)
    if length != sniffed.info.size:
        log.info("%s is a fixed VHD: its %d bytes of disk stream, its footer is left out", disk.file_name, length)
        source = PrefixSource(source, length)
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
