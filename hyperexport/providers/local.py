"""The ``local`` provider: a disk image, OVA or OVF on this host or behind an http(s) URL.

Nothing is snapshotted: "export" means finding the disks. A local disk is read
in place and never modified; an OVA is extracted (safely) under the output
directory; an OVF's disks are read beside it, or fetched relative to its URL.
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from ..archive import extract_ova
from ..errors import InvalidInputError, SourceNotFoundError
from ..formats import detect_format
from ..models import DiskFormat, DiskSource, DiskType, ExportOptions, ExportResult, VmInfo
from ..ovf import OvfDescriptor, parse_ovf
from ..staging import STAGING_DIR_NAME, fetch_url

NAME = "local"
DEFAULT_CONNECTIONS = 8
RECOMMENDED_LIMIT = 4

_EXTENSION_FORMATS = {
    ".vmdk": DiskFormat.vmdk,
    ".qcow2": DiskFormat.qcow2,
    ".img": DiskFormat.raw,
    ".raw": DiskFormat.raw,
    ".vhd": DiskFormat.vhd,
    ".vhdx": DiskFormat.vhdx,
    ".vdi": DiskFormat.vdi,
}


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(
        min_length=1, description="Path or http(s) URL of a disk image (vmdk, vhd, vhdx, qcow2, raw, vdi), an OVA or an OVF."
    )
    vm_name: str | None = Field(default=None, description="Name to record for the VM; defaults to the file name.")


def _is_url(source: str) -> bool:
    return urlsplit(source).scheme in ("http", "https")


def _redacted(source: str) -> str:
    parts = urlsplit(source)
    return parts._replace(query="…" if parts.query else "", fragment="").geturl() if _is_url(source) else source


def check_options(options: Options, export_options: ExportOptions) -> None:
    scheme = urlsplit(options.source).scheme
    if scheme and len(scheme) > 1 and scheme not in ("http", "https", "file"):
        raise InvalidInputError(f"local provider reads paths and http(s) URLs, not {scheme}:// ({_redacted(options.source)})")
    if not _is_url(options.source):
        path = _local_path(options.source)
        if not path.exists():
            raise SourceNotFoundError(f"source {path} does not exist; check the path (--vm)")


def describe(options: Options) -> str:
    return f"local source {_redacted(options.source)}"


def _local_path(source: str) -> Path:
    if source.startswith("file://"):
        source = urlsplit(source).path
    return Path(source).expanduser().absolute()


def _is_ova(path: Path) -> bool:
    return path.suffix.lower() == ".ova" or (path.is_file() and path.suffix.lower() not in _EXTENSION_FORMATS and tarfile.is_tarfile(path))


def export(options: Options, export_options: ExportOptions, credentials: Any | None = None) -> ExportResult:
    check_options(options, export_options)
    staging = export_options.output_dir / STAGING_DIR_NAME
    if _is_url(options.source):
        return _export_url(options, export_options, staging)
    path = _local_path(options.source)
    if path.is_dir():
        ovfs = sorted(path.glob("*.ovf"))
        if len(ovfs) != 1:
            raise InvalidInputError(f"{path} is a directory with {len(ovfs)} .ovf files; point at one .ovf, an OVA or a disk image")
        path = ovfs[0]
    if path.suffix.lower() == ".ovf":
        return _from_ovf(path, parse_ovf(path), lambda href: str(path.parent / href), options, "ovf")
    if _is_ova(path):
        target = staging / path.stem
        extract_ova(path, target)
        ovfs = sorted(target.rglob("*.ovf"))
        if len(ovfs) != 1:
            raise InvalidInputError(f"OVA {path} holds {len(ovfs)} .ovf descriptors; expected exactly one")
        ovf = ovfs[0]
        return _from_ovf(ovf, parse_ovf(ovf), lambda href: str(ovf.parent / href), options, "ova")
    return _single_disk(options, str(path), detect_format(path), path.name, path.stat().st_size, "local-file")


def _export_url(options: Options, export_options: ExportOptions, staging: Path) -> ExportResult:
    url = options.source
    name = Path(urlsplit(url).path).name or "disk.img"
    suffix = Path(name).suffix.lower()
    if suffix == ".ova":
        ova = fetch_url(url, staging / name, export_options)
        return export(options.model_copy(update={"source": str(ova)}), export_options)
    if suffix == ".ovf":
        ovf = fetch_url(url, staging / name, export_options)
        return _from_ovf(ovf, parse_ovf(ovf), lambda href: urljoin(url, href), options, "ovf-url")
    return _single_disk(options, url, _EXTENSION_FORMATS.get(suffix), name, None, "http-download")


def _single_disk(
    options: Options, location: str, fmt: DiskFormat | None, name: str, size: int | None, method: str
) -> ExportResult:
    stem = Path(name).stem
    disk = DiskSource(
        id="disk-0", location=location, format=fmt, size_bytes=size,
        disk_type=DiskType.boot, boot_order_hint=0, label=stem, file_name=name,
    )
    return ExportResult(
        provider=NAME, export_method=method, vm=VmInfo(vm_id=stem, vm_name=options.vm_name or stem), disks=[disk]
    )


def _from_ovf(ovf: Path, descriptor: OvfDescriptor, locate, options: Options, method: str) -> ExportResult:
    disks = []
    for i, disk in enumerate(descriptor.disks):
        href_suffix = Path(disk.href).suffix.lower()
        fmt = DiskFormat.vmdk if disk.stream_optimized else _EXTENSION_FORMATS.get(href_suffix)
        location = locate(disk.href)
        if not _is_url(location) and not Path(location).exists():
            raise SourceNotFoundError(f"{ovf} names disk file {disk.href!r}, which is not beside it; copy it next to the .ovf")
        disks.append(
            DiskSource(
                id=f"disk-{i}", location=location, format=fmt, size_bytes=disk.file_size,
                virtual_size_bytes=disk.capacity_bytes, disk_type=DiskType.boot if i == 0 else DiskType.data,
                boot_order_hint=i, label=disk.disk_id, file_name=Path(disk.href).name,
            )
        )
    vm = descriptor.vm
    if options.vm_name:
        vm = vm.model_copy(update={"vm_name": options.vm_name})
    return ExportResult(provider=NAME, export_method=method, vm=vm, disks=disks, metadata={"ovf": str(ovf)})


def open_source(disk: DiskSource, options: Options, credentials: Any | None = None):
    raise InvalidInputError(f"local provider cannot open {disk.location!r}: only paths and http(s) URLs are supported")


def cleanup(result: ExportResult, options: Options, credentials: Any | None = None) -> list[str]:
    """The local provider creates nothing outside the output directory."""
    return []


def cleanup_run(run_id: str, options: Options, credentials: Any | None = None) -> list[str]:
    """The local provider creates nothing at the source, so no run leaves anything behind."""
    return []
