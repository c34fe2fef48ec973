"""An OVA's files read in place, through ranged reads of the archive: no copy of the archive, no extraction.

An OVA is an uncompressed tar, so every member is one byte range of it. ``index_ova`` reads the tar headers
(a ranged read or two per member) and refuses what an OVA read this way may not hold: names that leave the
archive, links, devices, duplicates and members that run past its end. ``MemberSource`` is one member as a
byte source for the transfer engine: staging downloads a disk straight from the archive, and a VMDK
descriptor's extents are its sibling members.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any, NamedTuple

from .errors import InvalidInputError, SourceNotFoundError, UnsafeArchiveError
from .transfer import ByteRangeSource
from .transfer.source import Buffer, SourceChangedError, SourceInfo

#: An OVF descriptor is a few KiB of XML; anything far larger is not one.
MAX_OVF_BYTES = 16 * 2**20
_HEADER_READ = 64 * 1024


class OvaMember(NamedTuple):
    name: str
    offset: int
    size: int


class _RangeReader(io.RawIOBase):
    """A read-only, seekable file over a byte source, for tarfile."""

    def __init__(self, source: ByteRangeSource, size: int) -> None:
        self._source, self._size, self._pos = source, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        length = min(len(view), self._size - self._pos)
        if length <= 0:
            return 0
        filled = 0
        for piece in self._source.read_range(self._pos, length):
            view[filled:filled + len(piece)] = piece
            filled += len(piece)
        self._pos += filled
        return filled


def index_ova(source: ByteRangeSource, size: int, where: str) -> dict[str, OvaMember]:
    """The OVA's files by their normalised member name; anything unsafe refuses the whole archive."""
    reader = io.BufferedReader(_RangeReader(source, size), buffer_size=_HEADER_READ)
    try:
        with tarfile.open(fileobj=reader, mode="r:") as archive:
            members = archive.getmembers()
    except tarfile.TarError as error:
        raise InvalidInputError(
            f"{where} is not a readable OVA (an uncompressed tar archive): {error}; re-download or re-export it"
        ) from None
    found: dict[str, OvaMember] = {}
    for member in members:
        name = _checked_name(member.name, where)
        if member.isdir():
            continue
        if not member.isfile():
            raise UnsafeArchiveError(
                f"{where} holds {member.name!r}, a link or device; an OVA read in place holds only files. "
                "Refusing the whole archive; re-export the OVA from the source hypervisor."
            )
        if member.offset_data + member.size > size:
            raise UnsafeArchiveError(f"{where}: member {member.name!r} runs past the end of the archive; it is truncated")
        if name in found:
            raise UnsafeArchiveError(f"{where} holds {member.name!r} twice; refusing the whole archive")
        found[name] = OvaMember(name, member.offset_data, member.size)
    return found


def _checked_name(name: str, where: str) -> str:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name or "\x00" in name:
        raise UnsafeArchiveError(
            f"{where} holds entry {name!r}, which would be written outside the extraction directory; "
            "refusing the whole archive (it may be malicious). Re-export the OVA from the source hypervisor."
        )
    return path.as_posix()


def member_for(members: dict[str, OvaMember], directory: str, href: str, where: str) -> OvaMember:
    """The member an OVF href names, relative to the OVF's own directory in the archive."""
    name = _checked_name((PurePosixPath(directory) / href).as_posix(), where)
    if name not in members:
        raise SourceNotFoundError(f"{where}: the OVF names disk file {href!r}, which the archive does not hold")
    return members[name]


def read_member(source: ByteRangeSource, member: OvaMember, limit: int, where: str) -> bytes:
    if member.size > limit:
        raise InvalidInputError(f"{where}: {member.name} is {member.size} bytes, too large for an OVF descriptor")
    return b"".join(bytes(piece) for piece in source.read_range(member.offset, member.size)) if member.size else b""


class MemberSource:
    """One file of an OVA as a byte source: the archive's bytes ``[offset, offset + size)``."""

    def __init__(self, archive: ByteRangeSource, members: dict[str, OvaMember], member: OvaMember, archive_size: int) -> None:
        self._archive, self._members, self._member, self._archive_size = archive, members, member, archive_size
        self.name = PurePosixPath(member.name).name

    def configure(self, options: Any) -> None:
        if hasattr(self._archive, "configure"):
            self._archive.configure(options)

    def close(self) -> None:
        if hasattr(self._archive, "close"):
            self._archive.close()

    def describe(self) -> SourceInfo:
        archive = self._archive.describe()
        if archive.size != self._archive_size:
            raise SourceChangedError(f"the OVA holding {self.name} changed size since its files were listed")
        identity = f"{archive.identity}#{self._member.name}" if archive.identity else None
        return SourceInfo(size=self._member.size, identity=identity, supports_ranges=archive.supports_ranges)

    def read_range(self, offset: int, length: int) -> Iterator[Buffer]:
        yield from self._archive.read_range(self._member.offset + offset, length)

    def sibling(self, name: str) -> MemberSource:
        where = f"the OVA holding {self.name}"
        member = member_for(self._members, str(PurePosixPath(self._member.name).parent), name, where)
        return MemberSource(self._archive, self._members, member, self._archive_size)
