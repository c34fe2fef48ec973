"""Inspect a disk image before anything trusts it.

An image is a set of instructions to qemu-img as much as a bag of bytes: a
qcow2 can name a backing file or an external data file (any host file, or a
``json:`` protocol string), a VMDK descriptor names its extents (absolute,
``../``, a symlink, a FIFO that hangs every reader). Each of these would copy
host files into the output, or hang. So, before qemu-img opens an image, we
read its header ourselves (qcow2 header and extensions, the VMDK text
descriptor) and refuse what we do not accept; then ``qemu-img info`` (bounded,
``--force-share``, explicit format) must agree: no backing file, no data file,
every extent a regular file beside the image.
"""

from __future__ import annotations

import struct
from pathlib import Path

from pydantic import BaseModel

from . import qemu
from .errors import UnsafeImageError
from .paths import contained, require_regular_file

VMDK_DESCRIPTOR_MAGIC = b"# Disk DescriptorFile"
_DESCRIPTOR_LIMIT = 64 * 1024

# What qemu-img reads as ordinary files beside the descriptor (each is tested in tests/untrusted).
SUPPORTED_VMDK_CREATE_TYPES = frozenset(
    {"monolithicSparse", "streamOptimized", "monolithicFlat", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat"}
)
_EXTENT_ACCESS = ("RW", "RDONLY", "NOACCESS")


class VmdkExtent(BaseModel):
    access: str
    kind: str
    file_name: str | None = None


class VmdkDescriptor(BaseModel):
    create_type: str | None
    parent_hint: str | None = None
    extents: list[VmdkExtent]


def parse_vmdk_descriptor(text: str) -> VmdkDescriptor:
    """The fields of a VMDK text descriptor that decide which files qemu-img would open."""
    create_type = parent = None
    extents = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if sep and key.strip() == "createType":
            create_type = value.strip().strip('"')
        elif sep and key.strip() == "parentFileNameHint":
            parent = value.strip().strip('"')
        elif line.split()[0] in _EXTENT_ACCESS:
            words = line.split()
            kind = words[2] if len(words) > 2 else "?"
            name = line.split('"')[1] if line.count('"') >= 2 else None
            extents.append(VmdkExtent(access=words[0], kind=kind.upper(), file_name=name))
    return VmdkDescriptor(create_type=create_type, parent_hint=parent, extents=extents)


def read_vmdk_descriptor(path: Path) -> VmdkDescriptor | None:
    """The text descriptor of ``path`` when it is one (not a binary sparse VMDK); ``None`` otherwise."""
    require_regular_file(path, "disk image")
    with open(path, "rb") as handle:
        head = handle.read(_DESCRIPTOR_LIMIT)
    # A binary sparse VMDK (KDMV, COWD) embeds a descriptor too, but qemu-img reads only the file itself as its extent.
    if head[:4] in (b"KDMV", b"COWD") or VMDK_DESCRIPTOR_MAGIC not in head[:1024]:
        return None
    return parse_vmdk_descriptor(head.split(b"\0", 1)[0].decode("utf-8", errors="replace"))


def check_vmdk_descriptor(descriptor: VmdkDescriptor, where: str) -> list[str]:
    """Refuse parents, unsupported create types and unsafe extent names; returns the extent file names."""
    if descriptor.parent_hint:
        raise UnsafeImageError(
            f"{where} is a VMDK snapshot (delta) whose parent is {descriptor.parent_hint!r}; a parent is a backing "
            "file that could be any file on this host, so it is refused. Consolidate the snapshots and export again."
        )
    if descriptor.create_type not in SUPPORTED_VMDK_CREATE_TYPES:
        raise UnsafeImageError(
            f"{where} is a VMDK of createType {descriptor.create_type!r}, which hyperexport does not accept "
            f"(accepted: {', '.join(sorted(SUPPORTED_VMDK_CREATE_TYPES))}); vmfs, device and custom types name raw "
            "devices or arbitrary files. Export the disk again as monolithicSparse or streamOptimized (an OVA does)."
        )
    names = []
    for extent in descriptor.extents:
        if extent.kind == "ZERO":
            continue
        if extent.kind not in ("FLAT", "SPARSE") or extent.file_name is None:
            raise UnsafeImageError(f"{where} has a {extent.kind} extent, which hyperexport does not accept; only FLAT and SPARSE files")
        names.append(extent.file_name)
    if not names and descriptor.create_type in ("monolithicFlat", "twoGbMaxExtentFlat", "twoGbMaxExtentSparse"):
        raise UnsafeImageError(f"{where} is a VMDK descriptor without extents; it holds no disk")
    return names


def check_local_extents(descriptor_path: Path, names: list[str]) -> list[Path]:
    """Every extent is a plain name beside the descriptor, a regular file with one name, not a symlink."""
    paths = []
    for name in names:
        extent = contained(descriptor_path.parent, name, f"VMDK extent of {descriptor_path.name}", plain=True)
        require_regular_file(extent, f"VMDK extent of {descriptor_path.name}", follow_symlinks=False, single_link=True)
        paths.append(extent)
    return paths


def _u32(data: bytes, offset: int) -> int:
    return struct.unpack_from(">I", data, offset)[0]


def _u64(data: bytes, offset: int) -> int:
    return struct.unpack_from(">Q", data, offset)[0]


_QCOW2_EXT_DATA_FILE = 0x44415441
_QCOW2_INCOMPAT_DATA_FILE = 1 << 2


QCOW2_HEADER_BYTES = 64 * 1024


def check_qcow2_header(path: Path) -> None:
    """Refuse a backing file or an external data file from the header itself, before qemu-img opens them."""
    with open(path, "rb") as handle:
        check_qcow2_header_bytes(handle.read(QCOW2_HEADER_BYTES), path)


def check_qcow2_header_bytes(header: bytes, path: Path | str) -> None:
    """``check_qcow2_header`` on the first ``QCOW2_HEADER_BYTES`` of an image (``path`` names it in messages)."""
    if len(header) < 72 or header[:4] != b"QFI\xfb":
        raise UnsafeImageError(f"{path} has a truncated qcow2 header; re-export or re-download it")
    version = _u32(header, 4)
    if _u64(header, 8) != 0 and _u32(header, 16) != 0:
        offset, size = _u64(header, 8), _u32(header, 16)
        name = header[offset:offset + min(size, 1023)].decode("utf-8", errors="replace") if offset + size <= len(header) else "?"
        raise UnsafeImageError(
            f"{path} is a qcow2 with a backing file ({name!r}); a backing file can be any file on this host, so "
            "the image is refused. Flatten it first (qemu-img convert -O qcow2 on the machine that made it)."
        )
    if version < 3:
        return
    incompatible = _u64(header, 72)
    header_length = _u32(header, 100) if len(header) >= 104 else 104
    if incompatible & _QCOW2_INCOMPAT_DATA_FILE:
        raise UnsafeImageError(
            f"{path} is a qcow2 with an external data file; its data lives in another file that could be any file "
            "on this host, so the image is refused. Convert it to a self-contained qcow2 first."
        )
    offset = header_length
    while offset + 8 <= len(header):
        kind, length = _u32(header, offset), _u32(header, offset + 4)
        if kind == 0:
            break
        if kind == _QCOW2_EXT_DATA_FILE:
            raise UnsafeImageError(
                f"{path} is a qcow2 that names an external data file; refused (it could be any file on this host)"
            )
        offset += 8 + (length + 7) // 8 * 8


def inspect(path: Path, fmt: str) -> qemu.ImageInfo:
    """``qemu-img info`` of a disk we have checked first; refuses anything that reaches outside the image."""
    require_regular_file(path, "disk image")
    if fmt == "qcow2":
        check_qcow2_header(path)
    if fmt == "vmdk":
        descriptor = read_vmdk_descriptor(path)
        if descriptor is not None:
            check_local_extents(path, check_vmdk_descriptor(descriptor, str(path)))
    info = qemu.info(path, fmt)
    if info.backing_filename or info.full_backing_filename:
        raise UnsafeImageError(f"{path} names a backing file ({info.backing_filename!r}); refusing it, it could be any host file")
    if info.data_file:
        raise UnsafeImageError(f"{path} names an external data file ({info.data_file!r}); refusing it, it could be any host file")
    root = path.parent.resolve()
    for extent in info.extents:
        # qemu-img's own view of the extents must match what we accepted from the descriptor: files beside it.
        resolved = (path.parent / extent).resolve()
        if not (resolved == path.resolve() or resolved.parent == root):
            raise UnsafeImageError(
                f"{path} reads extent {extent!r}, outside the image's own directory {root}; refusing the image"
            )
    return info
