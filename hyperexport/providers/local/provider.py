"""The ``local`` provider: a disk image, OVA or OVF on this host or behind an http(s) URL.

Nothing is snapshotted: "export" means finding the disks. A local disk is read
in place and never modified; an OVA is extracted (safely) under the output
directory; an OVF's disks are read beside it, or fetched relative to its URL.
"""

from __future__ import annotations

import tarfile
from pathlib import Path, PurePosixPath
from urllib.parse import urljoin, urlsplit

from ...archive import extract_ova
from ...errors import InvalidInputError, SourceNotFoundError, UnsafeImageError
from ...formats import detect_format
from ...image_safety import read_vmdk_descriptor
from ...models import DiskFormat, DiskSource, DiskType, ExportOptions, ExportResult, VmInfo
from ...ova_members import MAX_OVF_BYTES, MemberSource, index_ova, member_for, read_member
from ...ovf import OvfDescriptor, parse_ovf
from ...paths import check_relative_name, contained, public_url, require_regular_file, same_origin
from ...staging import HTTP_DEFAULTS, STAGING_DIR_NAME, fetch_url
from ...transfer import ByteRangeSource, HttpRangeSource
from ..contract import CliFlag, Provider
from ..session import ExportSession
from .options import LocalOptions

NAME = "local"
FIELD = "source.source"

_EXTENSION_FORMATS = {
    ".vmdk": DiskFormat.vmdk,
    ".qcow2": DiskFormat.qcow2,
    ".img": DiskFormat.raw,
    ".raw": DiskFormat.raw,
    ".vhd": DiskFormat.vhd,
    ".vhdx": DiskFormat.vhdx,
    ".vdi": DiskFormat.vdi,
}


def _is_url(source: str) -> bool:
    return urlsplit(source).scheme in ("http", "https")


def _shown(source: str) -> str:
    """The source as reports and messages may show it: a path, or scheme://host/path of a URL."""
    return public_url(source) if _is_url(source) else source


def _local_path(source: str) -> Path:
    if source.startswith("file://"):
        source = urlsplit(source).path
    return Path(source).expanduser().absolute()


def _find_ovf(path: Path) -> Path:
    if path.is_dir():
        ovfs = sorted(path.glob("*.ovf"))
        if len(ovfs) != 1:
            raise InvalidInputError(f"{path} is a directory with {len(ovfs)} .ovf files; point at one .ovf, an OVA or a disk image", field=FIELD)
        return ovfs[0]
    return path


def _source_paths(options: LocalOptions) -> list[Path]:
    """Every local file the run will read (for the output-overlap check): the source, an OVF's disks, a VMDK's extents."""
    if _is_url(options.source):
        return []
    path = _find_ovf(_local_path(options.source))
    found = [path]
    if path.suffix.lower() == ".ovf":
        for ovf_disk in parse_ovf(path).disks:
            found.append(_local_disk(path, ovf_disk.href))
    for disk in list(found):
        if disk.is_file() and disk.suffix.lower() != ".ovf" and not _is_ova(disk):
            descriptor = read_vmdk_descriptor(disk) if detect_format(disk) is DiskFormat.vmdk else None
            if descriptor is not None:
                found += [contained(disk.parent, e.file_name, f"VMDK extent of {disk.name}", plain=True)
                          for e in descriptor.extents if e.file_name]
    return found


def _is_ova(path: Path) -> bool:
    return path.suffix.lower() == ".ova" or (path.is_file() and path.suffix.lower() not in _EXTENSION_FORMATS and tarfile.is_tarfile(path))


def _from_ova(path: Path, target: Path, options: LocalOptions) -> ExportResult:
    extract_ova(path, target)
    ovfs = sorted(target.rglob("*.ovf"))
    if len(ovfs) != 1:
        raise InvalidInputError(f"OVA {path.name} holds {len(ovfs)} .ovf descriptors; expected exactly one", field=FIELD)
    ovf = ovfs[0]
    return _from_ovf(ovf, parse_ovf(ovf), lambda href: str(_local_disk(ovf, href)), options, "ova")


def _local_disk(ovf: Path, href: str) -> Path:
    """An OVF href as a regular file inside the OVF's own directory, symlinks resolved."""
    disk = contained(ovf.parent, href, f"{ovf.name}: disk href", field=FIELD)
    if not disk.exists():
        raise SourceNotFoundError(f"{ovf} names disk file {href!r}, which is not beside it; copy it next to the .ovf", field=FIELD)
    require_regular_file(disk, f"{ovf.name}: disk href {href!r} is", field=FIELD, single_link=True)
    return disk


def _export_url(options: LocalOptions, export_options: ExportOptions, staging: Path) -> ExportResult:
    url = options.url()
    name = Path(urlsplit(url).path).name or "disk.img"
    check_relative_name(name, "file name of the URL", plain=True, field=FIELD)
    suffix = Path(name).suffix.lower()
    headers = options.auth_headers()
    if suffix == ".ova":
        archive = HttpRangeSource(url, headers=headers, name=name)
        info = archive.describe()
        if info.supports_ranges:
            return _from_remote_ova(archive, info.size, options, staging / Path(name).stem)
        # A server without ranges: the archive comes whole, then it is extracted.
        ova = fetch_url(url, staging / name, export_options, headers=headers)
        return _from_ova(ova, staging / Path(name).stem, options)
    if suffix == ".ovf":
        ovf = _read_document(HttpRangeSource(url, headers=headers, name=name, kind="document"), staging / name)
        return _from_ovf(ovf, parse_ovf(ovf), lambda href: _remote_disk(options, href), options, "ovf-url")
    return _single_disk(options, public_url(url), _EXTENSION_FORMATS.get(suffix), name, None, "http-download")


def _from_remote_ova(archive: ByteRangeSource, size: int, options: LocalOptions, target: Path) -> ExportResult:
    """An OVA behind a URL read in place: its OVF read from the archive, its disks left there for staging to
    download straight from their byte ranges (``<ova url>#<member>``): one copy, no extraction."""
    where = f"OVA {public_url(options.source)}"
    members = index_ova(archive, size, where)
    ovfs = [m for m in members.values() if m.name.lower().endswith(".ovf")]
    if len(ovfs) != 1:
        raise InvalidInputError(f"{where} holds {len(ovfs)} .ovf descriptors; expected exactly one", field=FIELD)
    ovf_member = ovfs[0]
    ovf = contained(target, PurePosixPath(ovf_member.name).name, f"{where}: OVF descriptor", plain=True)
    ovf.parent.mkdir(parents=True, exist_ok=True)
    ovf.write_bytes(read_member(archive, ovf_member, MAX_OVF_BYTES, where))
    directory = str(PurePosixPath(ovf_member.name).parent)

    def locate(href: str) -> str:
        return f"{public_url(options.source)}#{member_for(members, directory, href, where).name}"

    return _from_ovf(ovf, parse_ovf(ovf), locate, options, "ova-url")


def _read_document(source: HttpRangeSource, dest: Path) -> Path:
    """A remote OVF descriptor, bounded in size, written to ``dest``."""
    size = source.describe().size
    if size > MAX_OVF_BYTES:
        raise InvalidInputError(f"{source.url} is {size} bytes, too large for an OVF descriptor", field=FIELD)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(b"".join(bytes(piece) for piece in source.read_range(0, size)) if size else b"")
    return dest


def _remote_disk(options: LocalOptions, href: str) -> str:
    """A remote OVF's href as a URL without secrets, on the OVF's own server unless other origins are allowed."""
    if _is_url(href):
        location = public_url(href)
    else:
        check_relative_name(href, "remote OVF disk href", field=FIELD)
        location = urljoin(public_url(options.source), href)
    if not same_origin(location, options.source) and not options.allow_other_origins:
        raise UnsafeImageError(
            f"remote OVF names disk {href!r} on another server than the OVF ({public_url(location)}); refused, so that "
            "a descriptor cannot send requests (and credentials) anywhere. Set the source option allow_other_origins "
            "to accept it.", field=FIELD,
        )
    return location


def _single_disk(
    options: LocalOptions, location: str, fmt: DiskFormat | None, name: str, size: int | None, method: str
) -> ExportResult:
    stem = Path(name).stem
    disk = DiskSource(
        id="disk-0", location=location, format=fmt, size_bytes=size,
        disk_type=DiskType.boot, boot_order_hint=0, label=stem, file_name=name,
    )
    return ExportResult(
        provider=NAME, export_method=method, vm=VmInfo(vm_id=stem, vm_name=options.vm_name or stem), disks=[disk]
    )


def _from_ovf(ovf: Path, descriptor: OvfDescriptor, locate, options: LocalOptions, method: str) -> ExportResult:
    disks = []
    for i, disk in enumerate(descriptor.disks):
        href_suffix = Path(disk.href).suffix.lower()
        fmt = DiskFormat.vmdk if disk.stream_optimized else _EXTENSION_FORMATS.get(href_suffix)
        location = locate(disk.href)
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


def _is_ova_url(source: str) -> bool:
    return _is_url(source) and Path(urlsplit(source).path).suffix.lower() == ".ova"


def _ova_member(disk: DiskSource, options: LocalOptions) -> MemberSource:
    """A disk inside the source OVA (``<ova url>#<member>``) as the byte range it occupies there."""
    base, _, member = disk.location.partition("#")
    if base != public_url(options.source):
        raise UnsafeImageError(f"disk {disk.id} names an OVA other than the source ({base}); refused", field=FIELD)
    archive = HttpRangeSource(options.url(), headers=options.auth_headers(), name=Path(urlsplit(base).path).name)
    info = archive.describe()
    members = index_ova(archive, info.size, f"OVA {base}")
    return MemberSource(archive, members, member_for(members, "", member, f"OVA {base}"), info.size)


class LocalProvider(Provider[LocalOptions, None]):
    """Disk images, OVAs and OVFs on this host or behind http(s) URLs: nothing to snapshot, nothing to clean up."""

    name = NAME
    title = "Local image, OVA or OVF (path or URL)"
    options_type = LocalOptions
    flags = (CliFlag(flag="--vm", option="source", help="a disk image, OVA or OVF path or http(s) URL (local)"),)
    label_options = ("vm_name", "source")
    recommended_limit = 4
    # Its disks are plain http(s) URLs: the staging's defaults for those.
    transfer = HTTP_DEFAULTS

    def check(self, options: LocalOptions, export: ExportOptions) -> None:
        scheme = urlsplit(options.source).scheme
        if scheme and len(scheme) > 1 and scheme not in ("http", "https", "file"):
            raise InvalidInputError(
                f"local provider reads paths and http(s) URLs, not {scheme}:// ({_shown(options.source)})", field=FIELD
            )
        if not _is_url(options.source):
            path = _local_path(options.source)
            if not path.exists():
                raise SourceNotFoundError(f"source {path} does not exist; check the path", field=FIELD)
            if path.is_dir():
                _find_ovf(path)
            else:
                require_regular_file(path, "source", field=FIELD)

    def describe(self, options: LocalOptions) -> str:
        return f"local source {_shown(options.source)}"

    def source_paths(self, options: LocalOptions) -> list[Path]:
        return _source_paths(options)

    def export(self, session: ExportSession[None], options: LocalOptions, export: ExportOptions) -> ExportResult:
        staging = export.output_dir / STAGING_DIR_NAME
        if _is_url(options.source):
            return _export_url(options, export, staging)
        path = _find_ovf(_local_path(options.source))
        if path.suffix.lower() == ".ovf":
            return _from_ovf(path, parse_ovf(path), lambda href: str(_local_disk(path, href)), options, "ovf")
        if _is_ova(path):
            return _from_ova(path, staging / path.stem, options)
        return _single_disk(options, str(path), detect_format(path), path.name, path.stat().st_size, "local-file")

    def open_disk(self, disk: DiskSource, options: LocalOptions, credentials: None) -> ByteRangeSource | Path:
        """A local disk in place; an http(s) disk as a byte source, with the URL's secrets put back: its query
        (when it is the source URL itself) and its credentials as an Authorization header (only on the
        source's own server)."""
        if not _is_url(disk.location):
            return super().open_disk(disk, options, credentials)
        if not _is_url(options.source):
            raise InvalidInputError(f"disk {disk.id} is at {public_url(disk.location)}, but the source is not a URL")
        if urlsplit(disk.location).fragment and _is_ova_url(options.source):
            return _ova_member(disk, options)
        url = options.url() if disk.location == public_url(options.source) else disk.location
        on_origin = same_origin(url, options.source)
        if not on_origin and not options.allow_other_origins:
            raise UnsafeImageError(f"disk {disk.id} is on another server than the source ({public_url(url)}); refused", field=FIELD)
        return HttpRangeSource(url, headers=options.auth_headers() if on_origin else {}, name=disk.file_name)
