"""A run-wide cancel (SIGINT) stops workers, backoffs and hashing promptly; the partial download stays resumable."""

from __future__ import annotations

import os
import threading
import time

import pytest
from support.fault_server import FaultServer, fail_with

from hyperexport.errors import CancelledError
from hyperexport.transfer import DataRange, FileRangeSource, HttpRangeSource, download
from hyperexport.transfer.hasher import FileHasher, Frontier, KnownZeros

from ._helpers import MiB, fast_options, leftovers, sha256


def _in_thread(fn):
    outcome: dict = {}

    def run():
        try:
            outcome["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - inspected by the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _cancel_and_time(cancel, thread) -> float:
    cancel.request_cancel()
    started = time.monotonic()
    thread.join(10)
    assert not thread.is_alive(), "the download did not stop after the cancel"
    return time.monotonic() - started


def test_cancel_stops_the_workers_and_a_rerun_resumes(clean_cancel, tmp_path):
    data = os.urandom(8 * MiB)
    dest = tmp_path / "disk.raw"
    with FaultServer(rate_bps=2 * MiB) as server:  # per connection: the download takes about a second
        url = server.add_file("/disk.raw", data)
        thread, outcome = _in_thread(lambda: download(HttpRangeSource(url), dest, fast_options()))
        deadline = time.monotonic() + 10
        while server.stats.bytes_served < 2 * MiB:
            assert thread.is_alive() and time.monotonic() < deadline
            time.sleep(0.01)
        assert _cancel_and_time(clean_cancel, thread) < 2.0
        error = outcome.get("error")
        assert isinstance(error, CancelledError), outcome
        assert "interrupted" in str(error) and "run the same command again to resume" in str(error)
        assert not dest.exists() and leftovers(dest) == ["disk.raw.part", "disk.raw.part.jsonl"]
        served = server.stats.bytes_served

        clean_cancel.reset()
        server.rate_bps = None
        result = download(HttpRangeSource(url), dest, fast_options())
    assert dest.read_bytes() == data and result.sha256 == sha256(data)
    assert result.bytes_resumed > 0 and result.bytes_fetched <= len(data) - served + 4 * 256 * 1024 + 2 * MiB


def test_cancel_wakes_a_worker_sleeping_in_backoff(clean_cancel, fault_server, payload, tmp_path):
    url = fault_server.add_file("/disk.raw", payload)
    fault_server.add_fault(fail_with(503, times=None, methods=("GET",)))
    options = fast_options(backoff=30, backoff_max=30, max_attempts=10)
    thread, outcome = _in_thread(lambda: download(HttpRangeSource(url), tmp_path / "disk.raw", options))
    deadline = time.monotonic() + 10
    while fault_server.stats.count(status=503) < 4:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.1)  # every worker is now asleep in a backoff of up to 30 s
    assert _cancel_and_time(clean_cancel, thread) < 2.0
    assert isinstance(outcome.get("error"), CancelledError)


def test_cancel_before_the_download_starts_touches_nothing(clean_cancel, fault_server, payload, tmp_path):
    url = fault_server.add_file("/disk.raw", payload)
    clean_cancel.request_cancel()
    with pytest.raises(CancelledError):
        download(HttpRangeSource(url), tmp_path / "disk.raw", fast_options())
    assert fault_server.stats.requests == 0 and leftovers(tmp_path / "disk.raw") == []


def test_hashing_a_huge_hole_stops_on_cancel(clean_cancel, tmp_path):
    path = tmp_path / "empty"
    path.write_bytes(b"")
    size = 1 << 40  # 1 TiB of declared zeros: hours of hashing
    fd = os.open(path, os.O_RDONLY)
    try:
        frontier = Frontier(size)
        frontier.add(0, size)
        hasher = FileHasher(fd, frontier, ["sha256"], KnownZeros([DataRange(0, size)])).start()
        thread, outcome = _in_thread(hasher.result)
        time.sleep(0.2)
        assert _cancel_and_time(clean_cancel, thread) < 2.0
        assert isinstance(outcome.get("error"), CancelledError)
    finally:
        os.close(fd)


def test_checking_an_existing_file_stops_on_cancel(clean_cancel, tmp_path):
    source = tmp_path / "big.raw"
    with open(source, "wb") as handle:
        handle.truncate(64 * 1024 * MiB)  # 64 GiB sparse: reading it back takes minutes
    dest = tmp_path / "copy.raw"
    os.link(source, dest)  # an existing destination of the right size: it gets hashed before anything else
    src = FileRangeSource(source, detect_holes=False, checksums={"md5": "0" * 32})
    thread, outcome = _in_thread(lambda: download(src, dest, fast_options()))
    time.sleep(0.3)
    assert _cancel_and_time(clean_cancel, thread) < 2.0
    assert isinstance(outcome.get("error"), CancelledError)
