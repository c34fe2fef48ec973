"""Resume: after a SIGKILL, after a failure, and starting over when the source changed."""

from __future__ import annotations

import os
import time

import pytest
from support.fault_server import fail_with

from hyperexport.errors import TransferError
from hyperexport.transfer import HttpRangeSource, download

from ._helpers import KiB, MiB, fast_options, leftovers, sha256, sigkill_mid_download


CHILD = """
import sys
from pathlib import Path
from hyperexport.transfer import HttpRangeSource, TransferOptions, download
download(HttpRangeSource(sys.argv[1]), Path(sys.argv[2]),
         TransferOptions(connections=4, chunk_size=256 * 1024, bandwidth_limit_bps=4 * 1024 * 1024))
"""


def test_resume_after_sigkill_fetches_only_what_is_missing(fault_server, tmp_path):
    size, connections, chunk = 12 * MiB, 4, 256 * KiB
    data = os.urandom(size)
    url = fault_server.add_file("/disk.raw", data)
    dest = tmp_path / "disk.raw"
    sigkill_mid_download(fault_server, CHILD, url, dest, size)
    assert not dest.exists()
    assert leftovers(dest) == ["disk.raw.part", "disk.raw.part.jsonl"]
    time.sleep(0.2)  # let the server notice the dead connections
    served_before = fault_server.stats.bytes_served

    result = download(HttpRangeSource(url), dest, fast_options(connections=connections, chunk_size=chunk))
    served_after = fault_server.stats.bytes_served - served_before
    assert dest.read_bytes() == data
    assert result.sha256 == sha256(data)
    assert result.bytes_resumed > 0
    assert served_after == result.bytes_fetched == size - result.bytes_resumed
    assert served_after <= size - served_before + connections * chunk
    assert leftovers(dest) == ["disk.raw"]


def test_resume_after_failure(fault_server, payload, tmp_path):
    url = fault_server.add_file("/disk.raw", payload)
    fault_server.add_fault(fail_with(503, times=None, methods=("GET",), offset=2 * MiB))
    dest = tmp_path / "disk.raw"
    with pytest.raises(TransferError):
        download(HttpRangeSource(url), dest, fast_options(connections=2, max_attempts=2))
    assert not dest.exists()
    fault_server.clear_faults()
    fault_server.reset_stats()
    result = download(HttpRangeSource(url), dest, fast_options())
    assert dest.read_bytes() == payload
    assert result.bytes_resumed > 0
    assert fault_server.stats.bytes_served == result.bytes_fetched == len(payload) - result.bytes_resumed
    assert result.verified_checksums == ["md5"]  # the md5 covers the resumed ranges too


def test_changed_source_starts_over(fault_server, payload, tmp_path):
    url = fault_server.add_file("/disk.raw", payload)
    fault_server.add_fault(fail_with(503, times=None, methods=("GET",), offset=2 * MiB))
    dest = tmp_path / "disk.raw"
    with pytest.raises(TransferError):
        download(HttpRangeSource(url), dest, fast_options(max_attempts=1))
    fault_server.clear_faults()
    new = payload[1:] + payload[:1]  # same size, new content
    fault_server.add_file("/disk.raw", new)  # new ETag
    result = download(HttpRangeSource(url), dest, fast_options())
    assert result.bytes_resumed == 0 and result.bytes_fetched == len(new)
    assert dest.read_bytes() == new


def test_resume_disabled_starts_over(fault_server, payload, tmp_path):
    url = fault_server.add_file("/disk.raw", payload)
    fault_server.add_fault(fail_with(503, times=None, methods=("GET",), offset=2 * MiB))
    dest = tmp_path / "disk.raw"
    with pytest.raises(TransferError):
        download(HttpRangeSource(url), dest, fast_options(max_attempts=1))
    fault_server.clear_faults()
    result = download(HttpRangeSource(url), dest, fast_options(resume=False))
    assert result.bytes_resumed == 0 and dest.read_bytes() == payload
