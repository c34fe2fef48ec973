"""Recognise a disk image's format from its bytes, not from qemu-img's guess.

qemu-img's probe reads only the start of a file, so a fixed-size VHD (whose
only marker is a 512-byte footer) looks like raw to it, and converting it as
raw leaves the footer inside the guest's disk. We read the footer ourselves.
"""

from __future__ import annotations

from pathlib import Path

from .errors import InvalidInputError, UnsafeImageError
from .models import DiskFormat
from .paths import require_regular_file

_VMDK_DESCRIPTOR = b"# Disk DescriptorFile"
HEAD_BYTES = 4096
TAIL_BYTES = 512


# Image formats qemu-img knows but we do not accept: some name backing files, none may pass as raw.
_UNSUPPORTED = (
    (b"QED\x00", "QED"),
    (b"COWD", "VMware 3 (COWD) sparse"),
    (b"WithoutFreeSpace", "Parallels"),
    (b"WithouFreSpacExt", "Parallels"),
    (b"Bochs Virtual HD Image", "Bochs"),
    (b"#V2.0 Format CLOOP", "cloop"),
)


def _looks_like_text(head: bytes) -> str | None:
    """What a head of printable text looks like (a web page, XML, JSON, plain text), or None for binary."""
    sample = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if not sample:
        return None
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        # The head may end inside a multi-byte character.
        try:
            text = sample[:-4].decode("utf-8")
        except UnicodeDecodeError:
            return None
    if any(ord(c) < 32 and c not in "\t\r\n\f" for c in text):
        return None
    lowered = text[:256].lower()
    if lowered.startswith(("<!doctype html", "<html", "<head", "<body")) or "<html" in lowered:
        return "a web page (HTML)"
    if lowered.startswith("<"):
        return "an XML document"
    if lowered.startswith(("{", "[")):
        return "a JSON document"
    return "plain text"


def detect_format(path: Path) -> DiskFormat:
    """The format of the regular file at ``path``, read from its bytes; refuses devices, pipes, directories and text."""
    try:
        st = require_regular_file(path, "disk image")
    except UnsafeImageError as error:
        if Path(path).is_dir():
            raise InvalidInputError(f"{path} is a directory, not a disk image; point at the image or at an .ovf file") from None
        raise error from None
    with open(path, "rb") as handle:
        head = handle.read(HEAD_BYTES)
        size = st.st_size
        tail = b""
        if size >= TAIL_BYTES:
            handle.seek(size - TAIL_BYTES)
            tail = handle.read(TAIL_BYTES)
    return format_of(head, tail, size, str(path))


def format_of(head: bytes, tail: bytes, size: int, path: str) -> DiskFormat:
    """The format of an image of ``size`` bytes from its first ``HEAD_BYTES`` and last ``TAIL_BYTES``
    (``tail`` empty when it is shorter); ``path`` names it in messages."""
    if size == 0:
        raise InvalidInputError(f"{path} is empty (0 bytes), not a disk image; re-export or re-download it")
    if head.startswith(b"QFI\xfb"):
        return DiskFormat.qcow2
    if head.startswith(b"KDMV") or head.lstrip().startswith(_VMDK_DESCRIPTOR) or _VMDK_DESCRIPTOR in head[:64]:
        return DiskFormat.vmdk
    if head.startswith(b"vhdxfile"):
        return DiskFormat.vhdx
    if head.startswith(b"conectix") or tail.startswith(b"conectix"):
        return DiskFormat.vhd
    if len(head) >= 0x44 and head[0x40:0x44] == b"\x7f\x10\xda\xbe":
        return DiskFormat.vdi
    for magic, name in _UNSUPPORTED:
        if head.startswith(magic):
            raise InvalidInputError(
                f"{path} is a {name} image, which hyperexport does not convert (read as raw, its metadata would "
                "become the guest's disk); convert it to qcow2 or raw with the tool that made it"
            )
    looks = _looks_like_text(head[:512])
    if looks is not None:
        raise InvalidInputError(
            f"{path} is {looks}, not a disk image"
            + ("; this looks like a web page, not a disk image: the URL probably needs authentication "
               "(or points at a login or error page)" if "web page" in looks else
               "; if it came from a URL, the URL probably needs authentication or points at the wrong file")
        )
    return DiskFormat.raw


def refuse_mislabelled(declared: DiskFormat | None, detected: DiskFormat, name: str | Path) -> None:
    """A disk said to be of a container format whose bytes have no header of it is damaged or mislabelled."""
    if declared is not None and declared is not detected and detected is DiskFormat.raw:
        raise InvalidInputError(
            f"{name} should be a {declared.value} image but has no {declared.value} header; "
            "it is truncated, corrupt or mislabelled. Re-export or re-download it."
        )
