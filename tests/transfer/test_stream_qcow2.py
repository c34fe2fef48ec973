"""A download written straight into a qcow2 image (``into="qcow2"``): identical, sparse, resumable, checked."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from hyperexport import qemu
from hyperexport.transfer import HttpRangeSource, download
from hyperexport.transfer.fetch import range_digest
from hyperexport.transfer.hasher import RangeChecker, WrittenBytesDifferError
from hyperexport.transfer.qcow2_target import Qcow2Target
from hyperexport.transfer import journal
from hyperexport.transfer.source import DataRange
from support.fault_server import reset_after
from support.procwatch import daemons_serving

from ._helpers import KiB, MiB, fast_options, leftovers, sha256, sigkill_mid_download


CHILD = """
import sys
from pathlib import Path
from hyperexport.transfer import HttpRangeSource, TransferOptions, download
download(HttpRangeSource(sys.argv[1]), Path(sys.argv[2]),
         TransferOptions(connections=4, chunk_size=256 * 1024, bandwidth_limit_bps=4 * 1024 * 1024), into="qcow2")
"""


def quarter_data(size: int, piece: int = 256 * KiB) -> bytes:
    """``size`` bytes, one piece in four random, the rest zeros."""
    out = bytearray(size)
    for offset in range(0, size, 4 * piece):
        out[offset : offset + piece] = os.urandom(min(piece, size - offset))
    return bytes(out)


def identical(raw: bytes, image: Path, tmp_path: Path) -> bool:
    reference = tmp_path / "reference.raw"
    reference.write_bytes(raw)
    return qemu.compare(reference, "raw", image, "qcow2").identical


def test_streamed_download_is_the_source_inside_a_sparse_qcow2(fault_server, tmp_path, monkeypatch):
    size = 8 * MiB
    data = quarter_data(size)
    url = fault_server.add_file("/disk.raw", data)
    dest = tmp_path / "disk.qcow2"
    read_back = []  # what the hasher read from the image through qemu-storage-daemon
    real_read_into = Qcow2Target.read_into

    def counted_read_into(self, view, offset):
        got = real_read_into(self, view, offset)
        read_back.append(got)
        return got

    monkeypatch.setattr(Qcow2Target, "read_into", counted_read_into)
    settles, syncs = [], []
    real_settle, real_sync = Qcow2Target.settle, Qcow2Target.sync

    def counted_settle(self):
        settles.append(1)
        real_settle(self)

    def counted_sync(self):
        syncs.append(1)
        real_sync(self)

    monkeypatch.setattr(Qcow2Target, "settle", counted_settle)
    monkeypatch.setattr(Qcow2Target, "sync", counted_sync)

    result = download(HttpRangeSource(url), dest, fast_options(), into="qcow2")

    assert qemu.info(dest, "qcow2").virtual_size == size
    assert identical(data, dest, tmp_path)
    assert result.layout == "qcow2" and result.size == size and result.sha256 == sha256(data)
    assert result.verified_checksums == ["md5"]
    # Every fetched range matched the digest it arrived with: its data read back from the image, its zeros
    # (never written, holes of the fresh image) hashed as zeros without a read.
    assert result.read_back_ranges == result.ranges_fetched == size // (256 * KiB)
    assert result.read_back_bytes == size // 4 and result.read_back_unchecked_bytes == 0
    assert sum(read_back) == size // 4  # the data once, for every whole-file hash: sha256 and the offered md5
    assert result.bytes_zero_unwritten == size - size // 4
    # A range is settled (NBD flush, no fdatasync) before the resume record counts it, unless it wrote nothing:
    # 8 of the 32 ranges hold data. The file is fdatasynced only at checkpoints and at the end.
    assert len(settles) == 8
    assert 1 <= len(syncs) <= 2
    # Zero pieces were never written: the image holds the quarter that is data, plus qcow2 metadata.
    assert dest.stat().st_blocks * 512 <= size // 4 + 1 * MiB
    assert qemu.check(dest, "qcow2").clean
    assert leftovers(dest) == ["disk.qcow2"] and daemons_serving(dest.with_name("disk.qcow2.part")) == []


def test_a_zero_range_retried_after_a_reset_is_written_and_read_back(fault_server, tmp_path):
    """The first attempt at a range leaves its zeros unwritten; if it fails, its retry writes them, and they
    are read back like data: only a successful first attempt's zeros are trusted unread."""
    piece = 256 * KiB
    data = os.urandom(piece) + bytes(2 * piece) + os.urandom(piece)
    url = fault_server.add_file("/disk.raw", data)
    fault_server.add_fault(reset_after(piece // 2, offset=piece + 1))  # the first zero range, half-way
    dest = tmp_path / "disk.qcow2"

    result = download(HttpRangeSource(url), dest, fast_options(chunk_size=piece), into="qcow2")

    assert identical(data, dest, tmp_path) and result.sha256 == sha256(data)
    assert result.retries == 1
    assert result.bytes_zero_unwritten == piece  # the second zero range only
    assert result.read_back_bytes == 3 * piece and result.read_back_ranges == 4


def test_streamed_download_killed_with_sigkill_resumes_and_ends_identical(fault_server, tmp_path):
    size, connections, chunk = 12 * MiB, 4, 256 * KiB
    data = os.urandom(size)
    url = fault_server.add_file("/disk.raw", data)
    dest = tmp_path / "disk.qcow2"
    sigkill_mid_download(fault_server, CHILD, url, dest, size)
    partial = dest.with_name("disk.qcow2.part")
    deadline = time.monotonic() + 10
    while daemons_serving(partial) and time.monotonic() < deadline:  # the parent-death signal ends the daemon
        time.sleep(0.05)
    assert daemons_serving(partial) == []
    assert not dest.exists() and leftovers(dest) == ["disk.qcow2.part", "disk.qcow2.part.jsonl"]
    time.sleep(0.2)  # let the server notice the dead connections
    served_before = fault_server.stats.bytes_served

    result = download(HttpRangeSource(url), dest, fast_options(connections=connections, chunk_size=chunk), into="qcow2")

    served_after = fault_server.stats.bytes_served - served_before
    assert identical(data, dest, tmp_path) and result.sha256 == sha256(data)
    assert result.bytes_resumed > 0
    assert served_after == result.bytes_fetched == size - result.bytes_resumed
    assert served_after <= size - served_before + connections * chunk
    # The kept ranges were read back too, against the digests the killed run recorded.
    assert result.read_back_bytes == size and result.read_back_unchecked_bytes == 0
    assert qemu.check(dest, "qcow2").clean
    assert leftovers(dest) == ["disk.qcow2"]


def test_a_planted_partial_image_with_a_backing_file_is_not_trusted(fault_server, tmp_path):
    """A partial qcow2 that names a host file as its backing file, with a record claiming every range is done,
    would make the output the host file's content. It is emptied and written again."""
    size = 2 * MiB
    data = os.urandom(size)
    url = fault_server.add_file("/disk.raw", data)
    secret = tmp_path / "secret.raw"
    secret.write_bytes(b"host secret\n" * (size // 12) + bytes(size % 12))
    dest = tmp_path / "out" / "disk.qcow2"
    dest.parent.mkdir()
    partial = dest.with_name("disk.qcow2.part")
    made = subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(secret), "-F", "raw", str(partial)])
    assert made.returncode == 0
    identity = HttpRangeSource(url).describe().identity
    record = journal.ResumeRecord(journal.sidecar_path(dest))
    record.start(identity=identity, size=size, source="x", completed=[DataRange(0, size)], layout="qcow2")
    record.close()
    secret_before = secret.read_bytes()
    fault_server.reset_stats()

    result = download(HttpRangeSource(url), dest, fast_options(), into="qcow2")

    assert result.bytes_resumed == 0 and fault_server.stats.bytes_served == size
    assert identical(data, dest, tmp_path)
    assert qemu.info(dest, "qcow2").backing_filename is None
    assert secret.read_bytes() == secret_before


def test_range_checker_names_the_range_whose_bytes_differ():
    good = os.urandom(64 * KiB)
    ranges = [DataRange(0, 32 * KiB), DataRange(32 * KiB, 32 * KiB)]
    digests = {}
    for r in ranges:
        digest = range_digest()
        digest.update(good[r.offset : r.end])
        digests[r] = digest.hexdigest()
    checker = RangeChecker(ranges, digests)
    checker.feed(0, memoryview(good[: 40 * KiB]))
    checker.feed(40 * KiB, memoryview(good[40 * KiB :]))
    assert (checker.checked_ranges, checker.checked_bytes) == (2, 64 * KiB)

    bad = bytearray(good)
    bad[40 * KiB] ^= 1
    checker = RangeChecker(ranges, digests)
    with pytest.raises(WrittenBytesDifferError, match=f"bytes {32 * KiB}-{64 * KiB - 1} read back"):
        checker.feed(0, memoryview(bytes(bad)))
