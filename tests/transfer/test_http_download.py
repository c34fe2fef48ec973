"""Happy paths of download() over HTTP: content, checksums, progress, sparse ranges, existing files."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os

import pytest

from hyperexport.errors import InvalidInputError
from hyperexport.progress import ProgressSnapshot
from hyperexport.transfer import DataRange, HttpRangeSource, download
from hyperexport.transfer.checksums import supported

from ._helpers import KiB, MiB, fast_options, leftovers, sha256


def test_download_matches_and_reports(fault_server, payload, tmp_path):
    url = fault_server.add_file("/disk.raw", payload)
    dest = tmp_path / "disk.raw"
    result = download(HttpRangeSource(url), dest, fast_options())
    assert dest.read_bytes() == payload
    assert result.sha256 == sha256(payload)
    assert result.checksum == f"sha256:{sha256(payload)}"
    assert result.size == len(payload) and result.bytes_fetched == len(payload)
    assert result.ranges_fetched == len(payload) // (256 * KiB)
    assert result.verified_checksums == ["md5"]  # Content-MD5 on HEAD
    assert leftovers(dest) == ["disk.raw"]  # no partial, no sidecar
    ranged = [r for r in fault_server.stats.log if r.method == "GET"]
    assert all(r.range and r.status == 206 for r in ranged)


def test_zero_pieces_stay_holes(fault_server, tmp_path):
    data = os.urandom(256 * KiB) + bytes(4 * MiB) + os.urandom(256 * KiB)
    url = fault_server.add_file("/z.raw", data)
    dest = tmp_path / "z.raw"
    download(HttpRangeSource(url), dest, fast_options())
    assert dest.read_bytes() == data
    assert dest.stat().st_blocks * 512 < 2 * MiB  # the 4 MiB of zeros were not written


def test_progress_is_monotonic_and_ends_at_total(fault_server, payload, tmp_path):
    url = fault_server.add_file("/disk.raw", payload)
    calls: list[tuple] = []
    snapshots: list[ProgressSnapshot] = []
    download(
        HttpRangeSource(url),
        tmp_path / "disk.raw",
        fast_options(read_size=16 * KiB),
        progress=lambda *args: calls.append(args),
        on_snapshot=snapshots.append,
        file_index=2,
        total_files=3,
    )
    currents = [c[0] for c in calls]
    assert len(calls) > 3
    assert currents == sorted(currents)
    assert currents[-1] == len(payload)
    assert all(c[1:] == (len(payload), "disk.raw", 2, 3) for c in calls)
    assert snapshots[-1].current == snapshots[-1].total == len(payload)
    assert snapshots[-1].eta_seconds == 0.0


def test_sparse_ranges_fetch_only_data(fault_server, tmp_path):
    size = 8 * MiB
    data = bytearray(size)
    extents = [DataRange(0, 64 * KiB), DataRange(3 * MiB + 4096, 300 * KiB), DataRange(7 * MiB, 1 * MiB)]
    for extent in extents:
        data[extent.offset : extent.end] = os.urandom(extent.length)
    data = bytes(data)
    url = fault_server.add_file("/sparse.raw", data)
    dest = tmp_path / "sparse.raw"
    result = download(HttpRangeSource(url, data_ranges=extents), dest, fast_options())
    allocated = sum(e.length for e in extents)
    assert dest.read_bytes() == data
    assert fault_server.stats.bytes_served == allocated == result.bytes_fetched
    assert result.bytes_sparse == size - allocated
    assert result.ranges_skipped_sparse == 2  # the two gaps between the extents
    assert dest.stat().st_blocks * 512 < allocated + 256 * KiB
    assert result.sha256 == sha256(data)


def test_existing_complete_file_is_kept(fault_server, payload, tmp_path):
    url = fault_server.add_file("/disk.raw", payload)
    dest = tmp_path / "disk.raw"
    download(HttpRangeSource(url), dest, fast_options())
    fault_server.reset_stats()
    again = download(HttpRangeSource(url), dest, fast_options())
    assert again.already_complete and again.bytes_fetched == 0
    assert again.sha256 == sha256(payload) and again.verified_checksums == ["md5"]
    assert fault_server.stats.count("GET") == 0


def test_existing_wrong_file_is_replaced(fault_server, payload, tmp_path):
    url = fault_server.add_file("/disk.raw", payload)
    dest = tmp_path / "disk.raw"
    dest.write_bytes(bytes(len(payload)))  # same size, wrong content: md5 tells
    result = download(HttpRangeSource(url), dest, fast_options())
    assert not result.already_complete
    assert dest.read_bytes() == payload


def test_server_without_ranges_streams_once(fault_server, payload, tmp_path):
    url = fault_server.add_file("/plain.raw", payload, accept_ranges=False)
    dest = tmp_path / "plain.raw"
    result = download(HttpRangeSource(url), dest, fast_options())
    assert dest.read_bytes() == payload
    assert result.ranges_fetched == 1
    assert fault_server.stats.count("GET", 200) == 2  # the probe (abandoned) and the one full read


def test_empty_object(fault_server, tmp_path):
    url = fault_server.add_file("/empty", b"")
    dest = tmp_path / "empty"
    result = download(HttpRangeSource(url), dest, fast_options())
    assert dest.read_bytes() == b"" and result.size == 0
    assert result.sha256 == sha256(b"")


def test_crc32c_from_x_goog_hash(fault_server, payload, tmp_path):
    if not supported("crc32c"):
        pytest.skip("google-crc32c is not installed")
    import google_crc32c

    crc = base64.b64encode(google_crc32c.Checksum(payload).digest()).decode()
    md5 = base64.b64encode(hashlib.md5(payload).digest()).decode()
    url = fault_server.add_file(
        "/gcs.raw", payload, content_md5=False, headers={"x-goog-hash": f"crc32c={crc},md5={md5}"}
    )
    result = download(HttpRangeSource(url), tmp_path / "gcs.raw", fast_options())
    assert result.verified_checksums == ["crc32c", "md5"]


def test_second_downloader_is_refused(fault_server, payload, tmp_path):
    url = fault_server.add_file("/disk.raw", payload)
    dest = tmp_path / "disk.raw"
    with open(tmp_path / "disk.raw.part", "wb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(InvalidInputError, match="another process"):
            download(HttpRangeSource(url), dest, fast_options())
    assert not dest.exists()


def test_a_failing_progress_callback_does_not_abort_the_download(fault_server, payload, tmp_path, caplog):
    url = fault_server.add_file("/cb.raw", payload)
    dest = tmp_path / "cb.raw"
    calls = []

    def broken(snapshot: ProgressSnapshot) -> None:
        calls.append(snapshot.current)
        raise RuntimeError("artifact API unreachable")

    result = download(HttpRangeSource(url), dest, fast_options(), on_snapshot=broken)
    assert dest.read_bytes() == payload and result.size == len(payload)
    assert calls, "the callback was never called"
    assert "progress callback for cb.raw failed (RuntimeError: artifact API unreachable)" in caplog.text


def test_connections_read_large_blocks_from_the_socket(fault_server, tmp_path):
    """httpcore alone reads 64 KiB per recv; the transport asks for read_size (h11 overhead per read is the cost)."""
    import time

    data = os.urandom(4 * MiB)
    url = fault_server.add_file("/big.raw", data)
    source = HttpRangeSource(url)
    source.configure(fast_options(read_size=1 * MiB, connections=1))
    try:
        source.describe()
        pieces = source.read_range(0, len(data))
        first = next(pieces)
        time.sleep(0.3)  # the server fills the socket buffer meanwhile
        rest = list(pieces)
    finally:
        source.close()
    assert b"".join([first, *rest]) == data
    assert max(len(p) for p in rest) > 64 * KiB


def test_a_range_is_written_in_blocks_not_in_the_pieces_the_socket_returns(fault_server, tmp_path, monkeypatch):
    """The source yields 16 KiB pieces; each 2 MiB range reaches the file as two 1 MiB writes (a system call,
    or an NBD request and a qcow2 allocation, per write), zero blocks inside them still left as holes."""
    from hyperexport.transfer.fetch import WRITE_BLOCK
    from hyperexport.transfer.target import FileTarget

    data = bytearray(os.urandom(8 * MiB))
    data[3 * MiB : 3 * MiB + 512 * KiB] = bytes(512 * KiB)  # zeros across a write block, 64 KiB aligned
    data = bytes(data)
    url = fault_server.add_file("/blocks.raw", data)
    writes: list[tuple[int, int]] = []
    real_write = FileTarget.write

    def counted_write(self, view, offset):
        writes.append((offset, len(view)))
        return real_write(self, view, offset)

    monkeypatch.setattr(FileTarget, "write", counted_write)
    dest = tmp_path / "blocks.raw"
    result = download(HttpRangeSource(url), dest, fast_options(chunk_size=2 * MiB, read_size=16 * KiB))
    assert dest.read_bytes() == data and result.sha256 == sha256(data)
    whole_blocks = [(o, n) for o, n in writes if o % WRITE_BLOCK == 0 and n == WRITE_BLOCK]
    assert len(whole_blocks) == 7  # the eight 1 MiB blocks, but the one holding the zeros
    assert sorted((o, n) for o, n in writes if (o, n) not in whole_blocks) == [(3 * MiB + 512 * KiB, 512 * KiB)]
    assert dest.stat().st_blocks * 512 <= 8 * MiB - 512 * KiB + 64 * KiB  # the zeros stayed a hole
