"""The first bytes of a source as a source of their own: a fixed VHD's disk without its footer."""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import InvalidInputError
from .options import TransferOptions
from .source import Buffer, ByteRangeSource, DataRange, SourceChangedError, SourceInfo


class PrefixSource:
    """Bytes ``[0, length)`` of ``inner``. The object's whole-file checksums cover bytes this source does not
    have, so it offers none (callers that must check them read the whole object instead); its identity is the
    object's, marked with the length, so that a resume record of the whole object is never taken for it."""

    def __init__(self, inner: ByteRangeSource, length: int) -> None:
        self.inner = inner
        self.length = length
        self.name = inner.name

    def configure(self, options: TransferOptions) -> None:
        configure = getattr(self.inner, "configure", None)
        if callable(configure):
            configure(options)

    def describe(self) -> SourceInfo:
        info = self.inner.describe()
        if info.size < self.length:
            raise SourceChangedError(f"{self.name} is now {info.size} bytes, shorter than the {self.length} read from it")
        if info.block_size and self.length % info.block_size:
            raise InvalidInputError(f"{self.name}: {self.length} bytes are not whole {info.block_size}-byte blocks")
        ranges = None
        if info.data_ranges is not None:
            ranges = [DataRange(r.offset, min(r.end, self.length) - r.offset) for r in info.data_ranges if r.offset < self.length]
        identity = f"{info.identity}:first:{self.length}" if info.identity else None
        return info.model_copy(update={"size": self.length, "checksums": {}, "data_ranges": ranges, "identity": identity})

    def read_range(self, offset: int, length: int) -> Iterable[Buffer]:
        if offset < 0 or offset + length > self.length:
            raise InvalidInputError(f"{self.name}: bytes {offset}+{length} are beyond the first {self.length}")
        return self.inner.read_range(offset, length)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()
