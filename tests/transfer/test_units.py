"""Unit tests of the small parts: ranges, resume record, zero detection, options, retry waits, redaction."""

from __future__ import annotations

import json
import os

import pydantic
import pytest
from tenacity import RetryCallState, Retrying

from hyperexport.errors import TransferError
from hyperexport.transfer import DataRange, TransferOptions, journal, redact_url
from hyperexport.transfer import ranges as R
from hyperexport.transfer.fetch import is_zero
from hyperexport.transfer.proxy import ProxySettings
from hyperexport.transfer.redact import split_credentials
from hyperexport.transfer.retry import wait_strategy
from hyperexport.transfer.throttle import TokenBucket


def test_range_arithmetic():
    rs = R.normalize([(10, 5), (0, 4), (4, 2), (100, 50), (140, 100)], 200)
    assert rs == [DataRange(0, 6), DataRange(10, 5), DataRange(100, 100)]
    assert R.subtract(rs, [DataRange(2, 10), DataRange(120, 10)]) == [
        DataRange(0, 2), DataRange(12, 3), DataRange(100, 20), DataRange(130, 70)
    ]  # fmt: skip
    assert R.holes(rs, 210) == [DataRange(6, 4), DataRange(15, 85), DataRange(200, 10)]
    assert R.split([DataRange(5, 20)], 8) == [DataRange(5, 3), DataRange(8, 8), DataRange(16, 8), DataRange(24, 1)]
    assert R.align([DataRange(5, 3), DataRange(17, 1)], 8, 20) == [DataRange(0, 8), DataRange(16, 4)]
    assert R.intersect(rs, [DataRange(3, 10)]) == [DataRange(3, 3), DataRange(10, 3)]


def test_resume_record_roundtrip_and_torn_tail(tmp_path):
    path = tmp_path / "x.part.jsonl"
    record = journal.ResumeRecord(path)
    record.start(identity="etag1", size=100, source="s", completed=[DataRange(0, 10)])
    record.add(10, 10, "d1")
    record.add(50, 10)
    record.close()
    with open(path, "ab") as handle:
        handle.write(b"[70, 1")  # torn by a crash
    loaded = journal.load(path, identity="etag1", size=100)
    assert loaded is not None and loaded.ranges == [(0, 10), (10, 10), (50, 10)]
    assert loaded.digests == {DataRange(10, 10): "d1"}
    assert journal.load(path, identity="etag2", size=100) is None
    assert journal.load(tmp_path / "missing", identity="etag1", size=100) is None


def test_resume_record_of_another_layout_is_not_used(tmp_path):
    """A record written for a qcow2 image says nothing about a raw partial file of the same name, and back."""
    path = tmp_path / "x.part.jsonl"
    record = journal.ResumeRecord(path)
    record.start(identity="e", size=100, source="s", completed=[DataRange(0, 10)], layout="qcow2")
    record.close()
    assert journal.load(path, identity="e", size=100) is None
    assert journal.load(path, identity="e", size=100, layout="qcow2").ranges == [(0, 10)]


def test_resume_record_after_reboot_trusts_only_durable(tmp_path):
    path = tmp_path / "x.part.jsonl"
    record = journal.ResumeRecord(path)
    record.start(identity="e", size=100, source="s", completed=[])
    record.add(0, 10)
    fd = os.open(tmp_path / "data", os.O_RDWR | os.O_CREAT)
    record.checkpoint(lambda: os.fdatasync(fd))
    os.close(fd)
    record.add(10, 10)
    record.close()
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    header["boot_id"] = "another-boot"
    path.write_text("\n".join([json.dumps(header)] + lines[1:]) + "\n")
    assert journal.load(path, identity="e", size=100).ranges == [(0, 10)]


def test_is_zero():
    assert is_zero(b"") and is_zero(bytes(3 * 1024 * 1024 + 5)) and is_zero(memoryview(bytearray(10)))
    data = bytearray(2 * 1024 * 1024)
    data[1_500_000] = 1
    assert not is_zero(data) and not is_zero(b"\x00\x01\x00")


def test_options_are_validated():
    with pytest.raises(pydantic.ValidationError):
        TransferOptions(connections=0)
    with pytest.raises(pydantic.ValidationError):
        TransferOptions(bandwidth_limit_bps=-1)
    with pytest.raises(pydantic.ValidationError):
        TransferOptions(chuck_size=1)  # typo: extra fields are refused


def test_wait_honours_retry_after():
    wait = wait_strategy(TransferOptions(backoff=0.01, backoff_max=0.05))
    state = RetryCallState(Retrying(), fn=None, args=(), kwargs={})
    err = TransferError("429")
    err.retry_after = 7
    state.set_exception((TransferError, err, None))
    assert wait(state) == 7
    plain = RetryCallState(Retrying(), fn=None, args=(), kwargs={})
    plain.set_exception((TransferError, TransferError("reset"), None))
    assert 0 <= wait(plain) <= 0.05
    capped = wait_strategy(TransferOptions(retry_after_max=2))
    assert capped(state) == 2


def test_redaction():
    assert redact_url("https://user:pw@acct.blob.core.windows.net/c/disk.vhd?sv=1&sig=abc#f") == (
        "https://acct.blob.core.windows.net/c/disk.vhd"
    )
    assert redact_url("http://127.0.0.1:8080/x") == "http://127.0.0.1:8080/x"
    assert split_credentials("https://u%40corp:p%3Ass@h:8443/d.img?t=1") == ("https://h:8443/d.img?t=1", "u@corp", "p:ss")
    assert split_credentials("https://h/d.img") == ("https://h/d.img", None, None)


def test_token_bucket_burst_is_free():
    bucket = TokenBucket(rate=1_000_000, burst=100_000)
    bucket.consume(50_000)  # no sleep needed: within the burst (would block ~0 s)
    assert bucket.burst == 100_000


def test_proxy_settings_follow_curl_rules(monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                 "NO_PROXY"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "proxy.corp:3128")
    monkeypatch.setenv("ALL_PROXY", "http://all.corp:8080")
    monkeypatch.setenv("NO_PROXY", " .internal.example, 10.0.0.0/8,files.example:8443, ::1 ,[fd00::1]:80")
    settings = ProxySettings.from_env()
    assert settings.proxy_for("http", "disks.example", 80) == "http://proxy.corp:3128"
    assert settings.proxy_for("https", "disks.example", 443) == "http://all.corp:8080"
    assert settings.proxy_for("http", "internal.example", 80) is None
    assert settings.proxy_for("http", "a.b.INTERNAL.example.", 80) is None
    assert settings.proxy_for("http", "notinternal.example", 80) == "http://proxy.corp:3128"
    assert settings.proxy_for("http", "10.20.30.40", 80) is None
    assert settings.proxy_for("http", "11.0.0.1", 80) == "http://proxy.corp:3128"
    assert settings.proxy_for("https", "files.example", 8443) is None
    assert settings.proxy_for("https", "files.example", 443) == "http://all.corp:8080"
    assert settings.proxy_for("http", "[::1]", 80) is None
    assert settings.proxy_for("http", "fd00::1", 80) is None and settings.proxy_for("http", "fd00::1", 81)
    assert settings.proxy_for("http", "localhost", 80) == "http://proxy.corp:3128"  # nothing implicit
    monkeypatch.setenv("no_proxy", "*")  # lower case wins
    assert ProxySettings.from_env().proxy_for("http", "disks.example", 80) is None
    assert ProxySettings().proxy_for("http", "disks.example", 80) is None  # trust_env=False


def test_every_whole_file_hash_comes_from_one_read_of_each_byte(tmp_path, monkeypatch):
    """Three algorithms over 40 blocks, ten times the reader's buffers; md5 made slow, so the reader runs ahead
    and must not reuse a buffer before md5 is done with it. The frontier advances out of order; a range of known
    zeros is not read."""
    import hashlib
    import threading
    import time

    from hyperexport.transfer import hasher as hasher_module
    from hyperexport.transfer.hasher import READ_BLOCK, FileHasher, Frontier, KnownZeros

    class SlowMd5:
        def __init__(self) -> None:
            self._md5 = hashlib.md5()

        def update(self, data) -> None:
            time.sleep(0.005)  # the block must still hold its bytes after the reader has moved on
            self._md5.update(data)

        def hexdigest(self) -> str:
            return self._md5.hexdigest()

    real_new_hasher = hasher_module.new_hasher
    monkeypatch.setattr(hasher_module, "new_hasher", lambda alg: SlowMd5() if alg == "md5" else real_new_hasher(alg))

    size = 40 * READ_BLOCK + 12345
    holes = [DataRange(3 * READ_BLOCK + 100, 2 * READ_BLOCK)]
    data = bytearray(os.urandom(size))
    for hole in holes:
        data[hole.offset : hole.end] = bytes(hole.length)
    path = tmp_path / "disk.raw"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    read = []
    lock = threading.Lock()

    def counting_reader(view, offset):
        got = os.preadv(fd, [view], offset)
        with lock:
            read.append((offset, got))
        return got

    try:
        frontier = Frontier(size)
        hasher = FileHasher(counting_reader, frontier, ["sha256", "md5", "sha1"], KnownZeros(holes)).start()
        for start, end in ((5, 8), (0, 3), (8, None), (3, 5)):  # in blocks, out of order, as ranges land
            frontier.add(start * READ_BLOCK, (end * READ_BLOCK if end else size) - start * READ_BLOCK)
        digests = hasher.result()
    finally:
        os.close(fd)

    assert digests == {alg: hashlib.new(alg, data).hexdigest() for alg in ("sha256", "md5", "sha1")}
    assert sum(got for _, got in read) == size - sum(h.length for h in holes)  # each data byte read once
    assert len({offset for offset, _ in read}) == len(read)


def test_an_aborted_hasher_with_several_algorithms_ends():
    from hyperexport.transfer.hasher import FileHasher, Frontier

    frontier = Frontier(1 << 30)
    hasher = FileHasher(lambda view, offset: len(view), frontier, ["sha256", "md5"]).start()
    frontier.add(0, 1 << 20)
    hasher.abort()  # returns: the reader and every algorithm's thread have ended
