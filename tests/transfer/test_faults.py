"""Injected faults: transient ones heal with identical content, permanent ones fail fast and cleanly."""

from __future__ import annotations

import time

import pytest
from support.fault_server import corrupt, fail_with, reset_after, retry_after, stall

from hyperexport import fsutil
from hyperexport.errors import (
    AccessDeniedError,
    InsufficientSpaceError,
    IntegrityError,
    SourceNotFoundError,
    TransferError,
)
from hyperexport.transfer import HttpRangeSource, SourceChangedError, download

from ._helpers import KiB, fast_options, leftovers, sha256

SECRET = "sig=TOPSECRET123"


def _check_ok(result, dest, payload):
    assert dest.read_bytes() == payload
    assert result.sha256 == sha256(payload)
    assert leftovers(dest) == [dest.name]


def test_connection_resets_recover(fault_server, payload, tmp_path):
    url = fault_server.add_file("/disk.raw", payload)
    fault_server.add_fault(reset_after(100 * KiB, times=3), reset_after(0, times=2))
    dest = tmp_path / "disk.raw"
    result = download(HttpRangeSource(url), dest, fast_options())
    _check_ok(result, dest, payload)
    assert result.retries == 5
    assert result.verified_checksums == ["md5"]


def test_503s_recover(fault_server, payload, tmp_path):
    url = fault_server.add_file("/disk.raw", payload)
    fault_server.add_fault(fail_with(503, times=6))  # HEAD included
    dest = tmp_path / "disk.raw"
    result = download(HttpRangeSource(url), dest, fast_options(max_attempts=8))
    _check_ok(result, dest, payload)
    assert fault_server.stats.count(status=503) == 6


def test_429_retry_after_recovers(fault_server, payload, tmp_path):
    url = fault_server.add_file("/disk.raw", payload)
    fault_server.add_fault(retry_after(1, times=1, methods=("GET",)))
    dest = tmp_path / "disk.raw"
    result = download(HttpRangeSource(url), dest, fast_options())
    _check_ok(result, dest, payload)
    assert fault_server.stats.count(status=429) == 1 and result.retries == 1


def test_stalled_connection_times_out_and_recovers(fault_server, payload, tmp_path):
    url = fault_server.add_file("/disk.raw", payload)
    fault_server.add_fault(stall(30, after_bytes=10 * KiB))
    dest = tmp_path / "disk.raw"
    result = download(HttpRangeSource(url), dest, fast_options(read_timeout=0.5))
    _check_ok(result, dest, payload)
    assert result.retries == 1


def test_transient_errors_give_up_after_max_attempts(fault_server, payload, tmp_path):
    url = fault_server.add_file("/disk.raw", payload)
    fault_server.add_fault(fail_with(500, times=None, methods=("GET",), offset=1024 * KiB))
    dest = tmp_path / "disk.raw"
    with pytest.raises(TransferError, match=r"bytes 1048576-1310719.*Gave up after 3 attempts"):
        download(HttpRangeSource(url), dest, fast_options(max_attempts=3))
    assert not dest.exists()
    assert fault_server.stats.count(status=500) == 3


@pytest.mark.parametrize(
    ("status", "error"), [(403, AccessDeniedError), (401, AccessDeniedError), (404, SourceNotFoundError)]
)
def test_permanent_statuses_fail_fast(fault_server, payload, tmp_path, status, error):
    url = fault_server.add_file("/disk.raw", payload)
    fault_server.add_fault(fail_with(status, times=None))
    dest = tmp_path / "disk.raw"
    with pytest.raises(error) as info:
        download(HttpRangeSource(url + "?" + SECRET), dest, fast_options(max_attempts=5))
    assert str(status) in str(info.value)
    assert SECRET not in str(info.value) and f"{url}: " in str(info.value)  # the URL without its query
    assert fault_server.stats.requests <= 2  # HEAD, then a ranged GET probe: never retried
    assert not dest.exists()


def test_403_mid_download_fails_fast_and_keeps_partial(fault_server, payload, tmp_path):
    url = fault_server.add_file("/disk.raw", payload)
    fault_server.add_fault(fail_with(403, times=None, methods=("GET",), offset=2 * 1024 * KiB))
    dest = tmp_path / "disk.raw"
    with pytest.raises(AccessDeniedError, match="presigned"):
        download(HttpRangeSource(url), dest, fast_options(connections=1))
    assert fault_server.stats.count(status=403) == 1
    assert not dest.exists()
    assert leftovers(dest) == ["disk.raw.part", "disk.raw.part.jsonl"]


@pytest.mark.parametrize("times", [1, 2])
def test_range_damaged_on_the_way_is_read_again(fault_server, payload, tmp_path, times):
    url = fault_server.add_file("/disk.raw", payload, range_md5=True)
    fault_server.add_fault(corrupt(600 * KiB, times=times))
    dest = tmp_path / "disk.raw"
    result = download(HttpRangeSource(url), dest, fast_options())
    _check_ok(result, dest, payload)
    assert result.retries == times
    reads = [r for r in fault_server.stats.log if r.range == "bytes=524288-786431"]
    assert len(reads) == times + 1


def test_persistently_damaged_range_fails_naming_it(fault_server, payload, tmp_path):
    url = fault_server.add_file("/disk.raw", payload, range_md5=True)
    fault_server.add_fault(corrupt(600 * KiB))
    dest = tmp_path / "disk.raw"
    started = time.monotonic()
    with pytest.raises(IntegrityError, match=r"failed at bytes 524288-786431: .*bytes 524288-786431 do not match "
                       r"their Content-MD5.* read 4 times and failed its checksum every time") as info:  # fmt: skip
        download(HttpRangeSource(url), dest, fast_options())
    assert not isinstance(info.value, SourceChangedError)
    assert time.monotonic() - started < 3
    assert len([r for r in fault_server.stats.log if r.range == "bytes=524288-786431"]) == 4
    assert not dest.exists()


def test_malformed_range_md5_counts_as_none(fault_server, payload, tmp_path):
    # Not base64: like a malformed whole-object Content-MD5, it verifies nothing and fails nothing.
    url = fault_server.add_file("/disk.raw", payload, range_md5="not*base64")
    dest = tmp_path / "disk.raw"
    result = download(HttpRangeSource(url), dest, fast_options())
    _check_ok(result, dest, payload)
    assert result.retries == 0
    assert "md5" in result.verified_checksums  # the whole-object Content-MD5 of the HEAD still holds


def test_corrupt_whole_object_md5_mismatch(fault_server, payload, tmp_path):
    url = fault_server.add_file("/disk.raw", payload)  # Content-MD5 of the whole object on HEAD only
    fault_server.add_fault(corrupt(1234))
    dest = tmp_path / "disk.raw"
    with pytest.raises(IntegrityError, match=r"md5 of the downloaded file is [0-9a-f]{32}, but the source says"):
        download(HttpRangeSource(url), dest, fast_options())
    assert leftovers(dest) == []  # corrupt partial discarded: the next run starts afresh


def test_verify_off_skips_checksums(fault_server, payload, tmp_path):
    url = fault_server.add_file("/disk.raw", payload)
    fault_server.add_fault(corrupt(1234))
    dest = tmp_path / "disk.raw"
    result = download(HttpRangeSource(url), dest, fast_options(verify=False))
    assert result.verified_checksums == [] and result.sha256 != sha256(payload)


def test_preflight_fails_before_downloading(fault_server, payload, tmp_path, monkeypatch):
    url = fault_server.add_file("/disk.raw", payload)
    monkeypatch.setattr(fsutil, "free_bytes", lambda directory: 1024)
    dest = tmp_path / "disk.raw"
    with pytest.raises(InsufficientSpaceError, match="GiB is free"):
        download(HttpRangeSource(url), dest, fast_options())
    assert fault_server.stats.bytes_served == 0
    assert leftovers(dest) == []


def test_connection_refused_is_transient_and_redacted(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/disk.raw?{SECRET}"
    with pytest.raises(TransferError) as info:
        download(HttpRangeSource(url), tmp_path / "disk.raw", fast_options(max_attempts=2))
    assert SECRET not in str(info.value) and "ConnectError" in str(info.value)


def test_source_changed_midway(fault_server, payload, tmp_path):
    url = fault_server.add_file("/disk.raw", payload)
    source = HttpRangeSource(url)
    source.describe()  # pins the ETag
    fault_server.add_file("/disk.raw", payload[1:] + payload[:1])
    with pytest.raises(SourceChangedError, match="412"):
        list(source.read_range(0, 1024))
    fault_server.add_file("/disk.raw", payload, honor_if_match=False, etag='"other"')
    with pytest.raises(SourceChangedError, match=r'answered with etag "other", but the download started with "'):
        list(source.read_range(0, 1024))
