"""FileRangeSource (holes from SEEK_DATA) and a provider-style source with per-block SHA-256."""

from __future__ import annotations

import hashlib
import os

import pytest

from hyperexport.errors import IntegrityError, SourceNotFoundError
from hyperexport.transfer import ByteRangeSource, DataRange, FileRangeSource, SourceInfo, download

from ._helpers import KiB, MiB, fast_options, leftovers, sha256


def _sparse_file(path, size, extents):
    with open(path, "wb") as handle:
        handle.truncate(size)
        for offset, length in extents:
            handle.seek(offset)
            handle.write(os.urandom(length))
    return path.read_bytes()


def test_file_source_copies_holes_as_holes(tmp_path):
    size = 16 * MiB
    extents = [(0, 64 * KiB), (5 * MiB, 1 * MiB), (15 * MiB, 1 * MiB)]
    data = _sparse_file(tmp_path / "src.raw", size, extents)
    source = FileRangeSource(tmp_path / "src.raw")
    info = source.describe()
    if info.data_ranges is None:
        pytest.skip("this filesystem does not report holes")
    dest = tmp_path / "out" / "copy.raw"
    result = download(source, dest, fast_options())
    assert dest.read_bytes() == data
    assert result.bytes_fetched <= 1.05 * sum(length for _, length in extents)
    assert dest.stat().st_blocks * 512 <= 3 * MiB
    assert result.sha256 == sha256(data)


def test_file_source_explicit_ranges_and_missing_file(tmp_path):
    data = os.urandom(MiB)
    (tmp_path / "src").write_bytes(data)
    result = download(FileRangeSource(tmp_path / "src", data_ranges=[(0, MiB)]), tmp_path / "dst", fast_options())
    assert (tmp_path / "dst").read_bytes() == data and result.bytes_fetched == MiB
    with pytest.raises(SourceNotFoundError):
        download(FileRangeSource(tmp_path / "nope"), tmp_path / "dst2", fast_options())


class BlockSource:
    """An EBS-like source: 512 KiB blocks, each checked against a SHA-256 from a (fake) API."""

    name = "snap-0123"
    BLOCK = 512 * KiB

    def __init__(self, data: bytes, bad_block: int | None = None, bad_reads: int | None = None) -> None:
        self.data = data
        self.sums = [hashlib.sha256(data[i : i + self.BLOCK]).digest() for i in range(0, len(data), self.BLOCK)]
        self.bad_block = bad_block
        self.bad_reads = bad_reads  # None: the block is bad every time
        self.calls: list[tuple[int, int]] = []

    def describe(self) -> SourceInfo:
        blocks = [DataRange(i * self.BLOCK, self.BLOCK) for i in range(len(self.sums)) if i % 2 == 0]
        return SourceInfo(size=len(self.data), identity="snap-0123", data_ranges=blocks, block_size=self.BLOCK,
                          range_checksum="sha256-per-block")  # fmt: skip

    def read_range(self, offset, length):
        self.calls.append((offset, length))
        assert offset % self.BLOCK == 0 and length % self.BLOCK == 0
        for index in range(offset // self.BLOCK, (offset + length) // self.BLOCK):
            block = self.data[index * self.BLOCK : (index + 1) * self.BLOCK]
            if index == self.bad_block and (self.bad_reads is None or self.bad_reads > 0):
                block = bytes([block[0] ^ 0xFF]) + block[1:]  # a flipped byte: never equal to the original
                if self.bad_reads is not None:
                    self.bad_reads -= 1
            if hashlib.sha256(block).digest() != self.sums[index]:
                raise IntegrityError(f"{self.name}: block {index} does not match its SHA-256")
            yield block


def test_custom_block_source(tmp_path):
    data = os.urandom(4 * MiB)
    source = BlockSource(data)
    assert isinstance(source, ByteRangeSource)
    dest = tmp_path / "snap.raw"
    result = download(source, dest, fast_options(chunk_size=100 * KiB))  # rounded up to one block
    expected = bytearray(len(data))
    for i in range(0, len(data), 2 * BlockSource.BLOCK):
        expected[i : i + BlockSource.BLOCK] = data[i : i + BlockSource.BLOCK]
    assert dest.read_bytes() == bytes(expected)
    assert all(length == BlockSource.BLOCK for _, length in source.calls)
    assert result.verified_checksums == ["sha256-per-block"]
    assert result.bytes_fetched == result.bytes_sparse == len(data) // 2


def test_custom_block_source_bad_block(tmp_path):
    dest = tmp_path / "snap.raw"
    source = BlockSource(os.urandom(4 * MiB), bad_block=4)
    with pytest.raises(IntegrityError, match=r"failed at bytes 2097152-2621439: snap-0123: block 4 does not match"):
        download(source, dest, fast_options())
    assert source.calls.count((4 * BlockSource.BLOCK, BlockSource.BLOCK)) == 4  # read, then 3 re-reads
    assert not dest.exists() and "snap.raw.part" in leftovers(dest)


def test_block_damaged_once_is_read_again(tmp_path):
    data = os.urandom(4 * MiB)
    source = BlockSource(data, bad_block=2, bad_reads=1)
    result = download(source, tmp_path / "snap.raw", fast_options())
    assert result.retries == 1 and source.calls.count((2 * BlockSource.BLOCK, BlockSource.BLOCK)) == 2
    assert (tmp_path / "snap.raw").read_bytes()[2 * BlockSource.BLOCK : 3 * BlockSource.BLOCK] == data[
        2 * BlockSource.BLOCK : 3 * BlockSource.BLOCK
    ]


def test_rereads_off_fails_at_the_first_bad_read(tmp_path):
    source = BlockSource(os.urandom(4 * MiB), bad_block=2, bad_reads=1)
    with pytest.raises(IntegrityError, match="block 2 does not match"):
        download(source, tmp_path / "snap.raw", fast_options(integrity_rereads=0))
    assert source.calls.count((2 * BlockSource.BLOCK, BlockSource.BLOCK)) == 1


def test_all_holes(tmp_path):
    (tmp_path / "src").write_bytes(os.urandom(MiB))
    dest = tmp_path / "dst"
    result = download(FileRangeSource(tmp_path / "src", data_ranges=[]), dest, fast_options())
    assert dest.read_bytes() == bytes(MiB) and result.bytes_fetched == 0
    assert result.sha256 == sha256(bytes(MiB)) and dest.stat().st_blocks == 0


def test_foreign_exception_becomes_redacted_transfer_error(tmp_path):
    from hyperexport.errors import TransferError

    class Broken(BlockSource):
        def read_range(self, offset, length):
            raise RuntimeError("SDK said: https://acct.example/disk?sig=TOPSECRET failed")
            yield b""

    with pytest.raises(TransferError) as info:
        download(Broken(os.urandom(MiB)), tmp_path / "x.raw", fast_options())
    assert "TOPSECRET" not in str(info.value) and "RuntimeError" in str(info.value)


@pytest.mark.parametrize("kind", ["device", "fifo", "directory", "socket", "symlink-to-device"])
def test_only_regular_files_are_read(tmp_path, kind):
    import socket
    import time

    from hyperexport.errors import InvalidInputError

    path = tmp_path / "disk.raw"
    held = None
    if kind == "device":
        path = "/dev/zero"
    elif kind == "fifo":
        os.mkfifo(path)  # no writer: a blocking open would hang forever
    elif kind == "directory":
        path.mkdir()
    elif kind == "socket":
        held = socket.socket(socket.AF_UNIX)
        held.bind(str(path))
    else:
        path.symlink_to("/dev/zero")
    started = time.monotonic()
    try:
        with pytest.raises(InvalidInputError, match=r"not a regular file, so it is not a disk image"):
            download(FileRangeSource(path), tmp_path / "out.raw", fast_options())
    finally:
        if held is not None:
            held.close()
    assert time.monotonic() - started < 2
    assert leftovers(tmp_path / "out.raw") == []
