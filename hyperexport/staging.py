"""The download step: bring each disk's bytes to the local filesystem and check them.

Every disk comes through one seam, the provider's ``open_disk``: a local path
is used in place (read, never written); a byte source (an http(s) URL, an SDK's
reads) goes through the transfer engine into its own directory
``source/<disk id>/``, a VMDK descriptor's extents beside it, read through the
source's ``sibling`` (plain names, the same place). Either way the staged disk's format is read
from its bytes and qemu-img must find it readable and consistent before the
pipeline goes on: qemu-img converts a truncated sparse VMDK without a word.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from urllib.parse import urlsplit
from typing import Any, Callable, Literal

from . import cancel, qemu
from .errors import InvalidInputError, UnsafeImageError
from .formats import detect_format, refuse_mislabelled
from .image_safety import check_vmdk_descriptor, inspect, read_vmdk_descriptor
from .models import DiskFormat, DiskSource, ExportOptions, StagedDisk
from .paths import check_relative_name, contained, require_regular_file
from .progress import ProgressCallback, ProgressSnapshot, broadcast
from .streaming import stream_disk
from .transfer import ByteRangeSource, HttpRangeSource, TransferOptions, TransferResult, download
from .transfer.defaults import TransferDefaults

STAGING_DIR_NAME = "source"
_CHECKABLE = {DiskFormat.qcow2, DiskFormat.vmdk, DiskFormat.vhdx, DiskFormat.vdi}


#: Downloads of plain http(s) URLs (the local provider's, an OVF's disks): a web server serves 8 parallel
#: 8 MiB ranges well.
HTTP_DEFAULTS = TransferDefaults(connections=8, chunk_size=8 * 2**20)


def transfer_options(export_options: ExportOptions, defaults: TransferDefaults) -> TransferOptions:
    return TransferOptions(
        connections=export_options.connections or defaults.connections,
        chunk_size=defaults.chunk_size,
        bandwidth_limit_bps=export_options.bandwidth_limit_bps,
        verify=export_options.validation.verify_checksums,
    )


def fetch_url(
    url: str,
    dest: Path,
    export_options: ExportOptions,
    *,
    defaults: TransferDefaults = HTTP_DEFAULTS,
    progress: ProgressCallback | None = None,
    on_snapshot: Callable[[ProgressSnapshot], None] | None = None,
    file_index: int = 1,
    total_files: int = 1,
    headers: dict[str, str] | None = None,
    kind: Literal["disk", "document"] = "disk",
) -> Path:
    """Download ``url`` to ``dest`` (resumable, verified); returns ``dest``. ``kind="document"`` for an OVF."""
    return _download(HttpRangeSource(url, headers=headers, name=dest.name, kind=kind), dest, export_options, defaults, progress, on_snapshot, file_index, total_files).path


def _download(source, dest, export_options, defaults, progress, on_snapshot, file_index, total_files) -> TransferResult:
    dest.parent.mkdir(parents=True, exist_ok=True)
    return download(
        source,
        dest,
        transfer_options(export_options, defaults),
        progress=progress or export_options.progress_callback,
        on_snapshot=broadcast(on_snapshot),
        file_index=file_index,
        total_files=total_files,
    )


def open_builtin(disk: DiskSource) -> ByteRangeSource | Path:
    """A disk at an absolute local path (``file://`` too) or a plain http(s) URL."""
    parts = urlsplit(disk.location)
    if parts.scheme in ("http", "https"):
        return HttpRangeSource(disk.location, name=disk.file_name)
    if parts.scheme == "file":
        return Path(parts.path)
    if not parts.scheme and Path(disk.location).is_absolute():
        return Path(disk.location)
    raise InvalidInputError(f"disk {disk.id} is at {disk.location!r}, which is neither an absolute path nor an http(s) URL")


def sha256_file(path: Path, chunk: int = 8 * 2**20) -> str:
    """Hash a regular file (a device or FIFO is refused before any read); a cancel stops it between chunks."""
    require_regular_file(path, "disk image")
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            cancel.raise_if_cancelled()
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def staged_dir(export_options: ExportOptions, disk: DiskSource) -> Path:
    """Each downloaded disk gets its own directory: equal file names (a/disk.img, b/disk.img) never collide,
    and a VMDK's extents land beside their own descriptor only."""
    return export_options.output_dir / STAGING_DIR_NAME / disk.id


def _fetch_extents(path: Path, disk: DiskSource, source: Any, export_options, defaults, progress, on_snapshot,
                   file_index, total_files) -> int:
    """A downloaded VMDK descriptor's extents: plain names, read through the source's ``sibling`` (the same
    server, folder or share, the same credentials), written beside the descriptor."""
    descriptor = read_vmdk_descriptor(path)
    if descriptor is None:
        return 0
    names = check_vmdk_descriptor(descriptor, f"VMDK descriptor {disk.file_name} of disk {disk.id}")
    sibling = getattr(source, "sibling", None)
    if not names:
        return 0
    if sibling is None:
        raise InvalidInputError(
            f"disk {disk.id} is a VMDK descriptor whose data is in separate extents ({', '.join(names)}), and its "
            f"source {source.name} cannot read files beside it; export the disk as one file (streamOptimized or "
            "monolithicSparse VMDK, qcow2 or raw)"
        )
    fetched = 0
    for name in names:
        check_relative_name(name, f"VMDK extent of {disk.file_name}", plain=True)
        if name == path.name:
            raise UnsafeImageError(f"VMDK descriptor {disk.file_name} names itself as its extent; refusing it")
        dest = contained(path.parent, name, f"VMDK extent of {disk.file_name}", plain=True)
        fetched += _download(sibling(name), dest, export_options, defaults, progress, on_snapshot,
                             file_index, total_files).bytes_fetched
    return fetched


def stage_disk(
    disk: DiskSource,
    export_options: ExportOptions,
    *,
    open_source: Callable[[DiskSource], Any] = open_builtin,
    defaults: TransferDefaults = HTTP_DEFAULTS,
    progress: ProgressCallback | None = None,
    on_snapshot: Callable[[ProgressSnapshot], None] | None = None,
    file_index: int = 1,
    total_files: int = 1,
    stream_to: Path | None = None,
) -> StagedDisk:
    """Stage one disk through the one seam: ``open_source`` (the provider's ``open_disk``) gives a local path,
    read in place, or a byte source, downloaded into ``source/<disk id>/``. With ``stream_to`` (the disk's
    output), a raw byte source is written straight into it instead (``streaming``)."""
    started = time.monotonic()
    fetched = 0
    check_relative_name(disk.file_name, f"file name of disk {disk.id}", plain=True)
    opened = open_source(disk)
    if isinstance(opened, Path):
        path = opened
        detect_format(path)  # refuses devices, pipes, directories and text before the hash reads a byte
        sha256 = sha256_file(path)
        size = path.stat().st_size
        for callback in filter(None, [progress or export_options.progress_callback]):
            callback(size, size, disk.file_name, file_index, total_files)
    else:
        if stream_to is not None:
            streamed = stream_disk(
                disk, opened, stream_to, transfer_options(export_options, defaults),
                progress=progress or export_options.progress_callback, on_snapshot=broadcast(on_snapshot),
                file_index=file_index, total_files=total_files,
            )  # fmt: skip
            if streamed is not None:
                return streamed
        directory = staged_dir(export_options, disk)
        dest = contained(directory.parent, f"{disk.id}/{disk.file_name}", f"file name of disk {disk.id}")
        result = _download(opened, dest, export_options, defaults, progress, on_snapshot, file_index, total_files)
        path, fetched, sha256 = result.path, result.bytes_fetched, result.checksum
        fetched += _fetch_extents(path, disk, opened, export_options, defaults, progress, on_snapshot,
                                  file_index, total_files)
    fmt, info = verify_disk(path, disk.format)
    return StagedDisk(
        id=disk.id,
        path=path,
        format=fmt,
        size_bytes=path.stat().st_size,
        virtual_size_bytes=info.virtual_size,
        sha256=sha256,
        disk_type=disk.disk_type,
        boot_order_hint=disk.boot_order_hint,
        label=disk.label,
        download_seconds=time.monotonic() - started,
        bytes_fetched=fetched,
    )


def verify_disk(path: Path, declared: DiskFormat | None) -> tuple[DiskFormat, qemu.ImageInfo]:
    """The disk's real format and qemu-img's description of it, once qemu-img has found it readable and consistent."""
    fmt = detect_format(path)
    refuse_mislabelled(declared, fmt, path)
    info = inspect(path, fmt.qemu_format)
    if fmt in _CHECKABLE:
        result = qemu.check(path, fmt.qemu_format)
        if not result.clean:
            raise InvalidInputError(
                f"{path} fails qemu-img check as {fmt.value} ({result.evidence}); it is truncated or corrupt. "
                "Re-export or re-download it; converting it would silently lose data."
            )
    return fmt, info
