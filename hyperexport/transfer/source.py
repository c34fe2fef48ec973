"""The contract between the transfer engine and whatever holds the bytes.

A source is any object with a ``name``, a ``describe()`` and a ``read_range()``:

    class ByteRangeSource(Protocol):
        name: str                                   # for messages: no secrets in it
        def describe(self) -> SourceInfo: ...
        def read_range(self, offset: int, length: int) -> Iterable[Buffer]: ...

``describe()`` is called once per download (retried on ``TransientError``) and
returns a ``SourceInfo``: the size, an ``identity`` (ETag, version id, snapshot
id...) that pins every later read to the same content and keys the resume
record, the whole-object checksums the source offers, and optionally the list
of ``data_ranges`` that hold data (everything else is zeros and stays a hole).

``read_range(offset, length)`` yields the bytes of ``[offset, offset+length)``
in order, as bytes-like chunks of 1-byte items (bytes, bytearray or
memoryview), and must yield exactly ``length`` bytes in total. Rules:

* Stream: yield pieces of a bounded size (a few hundred KiB to a few MiB), never
  the whole range at once. The engine writes each chunk out before it asks for
  the next one, so a source may yield views of one reused buffer.
* Verify per-range checksums itself (EBS GetSnapshotBlock's SHA-256, Azure's
  range Content-MD5...) by hashing what it yields and raising
  ``IntegrityError`` naming the range or block after the last chunk; name the
  check in ``SourceInfo.range_checksum`` so the result lists it.
* Raise from the ``hyperexport.errors`` tree: ``TransferError`` for anything
  that may heal (reset, timeout, 5xx, 429 -- set ``retry_after`` on the
  exception to ask for a minimum wait), ``AccessDeniedError`` for 401/403,
  ``SourceNotFoundError`` for 404, ``IntegrityError`` for bytes that fail the
  range's or block's own checksum (damage on the way), ``SourceChangedError``
  (an ``IntegrityError``) when the object itself changed (another ETag, size
  or version; a 412). Transient errors are retried ``max_attempts`` times and
  damaged ranges re-read ``integrity_rereads`` times, always the whole range;
  a ``SourceChangedError`` restarts the download from scratch once (a
  ``describe`` again, every range fetched again); everything else fails the
  download at once.
* Be thread-safe: the engine calls ``read_range`` from ``connections`` threads.
* The engine closes the iterator (``close()``) when it stops early, so a
  generator's ``with``/``finally`` blocks release the connection.
* If ``SourceInfo.block_size`` is set, every range the engine asks for starts
  and ends on a multiple of it (except at the end of the object).

Three optional methods are used when present: ``configure(options)`` (called
before ``describe`` with the ``TransferOptions``, to size connection pools and
timeouts), ``close()`` (called when ``download`` returns; a source must be
usable again afterwards, reopening lazily) and ``sibling(name)``: a source for
the file ``name`` beside this one, with the same credentials (the same server,
datastore folder or share), through which staging follows a VMDK descriptor's
extents. A source without it cannot serve a descriptor with separate extents.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple, Protocol, Union, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from ..errors import IntegrityError

Buffer = Union[bytes, bytearray, memoryview]

#: Whole-object checksum algorithms the engine knows how to compute.
CHECKSUM_ALGORITHMS = ("sha256", "sha1", "md5", "crc32", "crc32c")


class SourceChangedError(IntegrityError):
    """The object changed during the download (ETag, Last-Modified, size or version moved; 412).

    Re-reading the range cannot help, and mixing its new bytes with the ranges
    already written would stitch two versions: the engine starts over once.
    """


class DataRange(NamedTuple):
    """A byte range ``[offset, offset + length)`` of the source."""

    offset: int
    length: int

    @property
    def end(self) -> int:
        return self.offset + self.length


class SourceInfo(BaseModel):
    """What a source knows about the object before any byte moves."""

    model_config = ConfigDict(frozen=True)

    size: int = Field(ge=0, description="Size of the object in bytes.")
    identity: str | None = Field(
        default=None,
        description="Content identity (ETag, version id, snapshot id, mtime+inode). Keys the resume record: "
        "a different identity discards a partial download. None disables resume.",
    )
    checksums: dict[str, str] = Field(
        default_factory=dict,
        description="Whole-object checksums the source offers: algorithm (one of CHECKSUM_ALGORITHMS) -> "
        "lowercase hex digest (crc32/crc32c as 8 hex digits, big-endian).",
    )
    data_ranges: list[DataRange] | None = Field(
        default=None,
        description="Ranges that hold data; bytes outside them are zeros and are never fetched. None = all of it.",
    )
    block_size: int | None = Field(
        default=None, gt=0, description="Ranges requested from the source are aligned to this many bytes."
    )
    supports_ranges: bool = Field(
        default=True, description="False when the source can only stream the whole object from offset 0."
    )
    range_checksum: str | None = Field(
        default=None,
        description="Name of the per-range check read_range performs (e.g. 'sha256-per-block'), for the result.",
    )


@runtime_checkable
class ByteRangeSource(Protocol):
    """Anything that can read a byte range. See the module docstring for the rules."""

    name: str

    def describe(self) -> SourceInfo: ...

    def read_range(self, offset: int, length: int) -> Iterable[Buffer]: ...
