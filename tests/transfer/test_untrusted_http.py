"""Servers that cannot be trusted: redirects, web pages, credentials in URLs, versions changing mid-download."""

from __future__ import annotations

import json
import time

import pytest
from support.fault_server import FaultServer, fail_with, swap

from hyperexport.errors import InvalidInputError, IntegrityError, SourceNotFoundError
from hyperexport.transfer import HttpRangeSource, SourceChangedError, TransferOptions, download
from hyperexport.transfer.journal import sidecar_path

from ._helpers import MiB, fast_options, leftovers, sha256

PASSWORD = "s3cr3t-Pa55"
TOKEN = "sig=QUERYTOKEN42"


def _redirect(location: str, status: int = 302):
    return fail_with(status, times=None, methods=None, path="/old.raw", headers={"Location": location})


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://127.0.0.1/disk.raw", "gopher://x/1"])
def test_redirect_to_another_scheme_fails_at_once(fault_server, payload, tmp_path, location):
    fault_server.add_file("/disk.raw", payload)
    fault_server.add_fault(_redirect(location))
    started = time.monotonic()
    with pytest.raises(InvalidInputError, match=r"redirected to a (file|ftp|gopher): URL; only http and https"):
        download(HttpRangeSource(fault_server.url("/old.raw")), tmp_path / "d.raw", fast_options(backoff=1))
    assert time.monotonic() - started < 2 and fault_server.stats.requests == 1
    assert leftovers(tmp_path / "d.raw") == []


def test_same_origin_redirect_is_followed(fault_server, payload, tmp_path):
    fault_server.add_file("/disk.raw", payload)
    fault_server.add_fault(_redirect("/disk.raw", 307))
    result = download(HttpRangeSource(fault_server.url("/old.raw")), tmp_path / "d.raw", fast_options())
    assert result.sha256 == sha256(payload) and (tmp_path / "d.raw").read_bytes() == payload


def test_cross_origin_redirect_refused_unless_allowed_and_never_carries_credentials(fault_server, payload, tmp_path):
    with FaultServer() as other:
        other.add_file("/disk.raw", payload)
        fault_server.add_fault(_redirect(other.url("/disk.raw", "X-Sig=abc")))
        origin = fault_server.url("/old.raw").replace("http://", f"http://admin:{PASSWORD}@")
        with pytest.raises(InvalidInputError, match=r"redirected to another origin \(http://127\.0\.0\.1:\d+/disk\.raw\)") as info:
            download(HttpRangeSource(origin), tmp_path / "d.raw", fast_options())
        assert PASSWORD not in str(info.value) and "X-Sig" not in str(info.value)
        assert other.stats.requests == 0
        assert fault_server.stats.log[0].headers["authorization"].startswith("Basic ")

        result = download(HttpRangeSource(origin), tmp_path / "d.raw", fast_options(allow_cross_origin_redirects=True))
        assert result.sha256 == sha256(payload)
        assert other.stats.requests > 0
        assert all("authorization" not in r.headers for r in other.stats.log)


def test_redirect_loop_is_bad_input(fault_server, tmp_path):
    fault_server.add_fault(_redirect("/old.raw"))
    with pytest.raises(InvalidInputError, match="redirected more than 10 times"):
        download(HttpRangeSource(fault_server.url("/old.raw")), tmp_path / "d.raw", fast_options())


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        ("text/html; charset=utf-8", r"answered with a web page \(text/html\), not a disk image; the URL probably "
                                     r"needs authentication or points at a login page"),
        ("application/json", r"answered with a document \(application/json\), not a disk image"),
        ("text/plain", r"answered with a document \(text/plain\)"),
        ("application/problem+xml", r"answered with a document \(application/problem\+xml\)"),
    ],
)  # fmt: skip
def test_web_pages_are_not_disks(fault_server, tmp_path, content_type, message):
    page = b"<html><body><form action=/login>Sign in</form></body></html>"
    url = fault_server.add_file("/disk.img", page, content_type=content_type)
    with pytest.raises(InvalidInputError, match=message):
        download(HttpRangeSource(url), tmp_path / "disk.img", fast_options())
    assert fault_server.stats.count("GET") == 0 and leftovers(tmp_path / "disk.img") == []


def test_a_document_may_be_xml_but_not_html(fault_server, tmp_path):
    ovf = b"<?xml version='1.0'?><Envelope/>"
    url = fault_server.add_file("/vm.ovf", ovf, content_type="text/xml")
    download(HttpRangeSource(url, kind="document"), tmp_path / "vm.ovf", fast_options())
    assert (tmp_path / "vm.ovf").read_bytes() == ovf
    url = fault_server.add_file("/login.ovf", b"<html></html>", content_type="text/html")
    with pytest.raises(InvalidInputError, match="web page"):
        download(HttpRangeSource(url, kind="document"), tmp_path / "login.ovf", fast_options())


def test_url_credentials_become_basic_auth_and_never_show(fault_server, payload, tmp_path, caplog):
    caplog.set_level("DEBUG")
    fault_server.add_file("/disk.raw", payload, auth=("admin", PASSWORD))
    url = fault_server.url("/disk.raw", TOKEN).replace("http://", f"http://admin:{PASSWORD}@")
    source = HttpRangeSource(url)
    clean = fault_server.url("/disk.raw")
    assert source.url == source.name == clean
    dest = tmp_path / "disk.raw"
    fault_server.add_fault(fail_with(503, times=None, methods=("GET",), offset=2 * MiB))  # leave a journal behind
    with pytest.raises(Exception) as failed:
        download(source, dest, fast_options(max_attempts=1))
    journal_text = sidecar_path(dest).read_text()
    assert json.loads(journal_text.splitlines()[0])["source"] == clean
    fault_server.clear_faults()
    result = download(HttpRangeSource(url), dest, fast_options())
    assert dest.read_bytes() == payload and result.bytes_resumed > 0
    for text in (journal_text, str(failed.value), repr(failed.value), result.model_dump_json(), caplog.text):
        assert PASSWORD not in text and TOKEN not in text and "admin" not in text
    assert all(r.headers.get("authorization", "").startswith("Basic ") for r in fault_server.stats.log)
    assert fault_server.stats.count(status=401) == 0


def test_wrong_url_credentials_are_access_denied_and_redacted(fault_server, payload, tmp_path):
    fault_server.add_file("/disk.raw", payload, auth=("admin", "right"))
    url = fault_server.url("/disk.raw", TOKEN).replace("http://", f"http://admin:{PASSWORD}@")
    with pytest.raises(Exception) as info:
        download(HttpRangeSource(url), tmp_path / "d.raw", fast_options())
    assert "401" in str(info.value) and PASSWORD not in str(info.value) and TOKEN not in str(info.value)


def test_server_ignoring_if_match_changing_mid_download_starts_over(fault_server, payload, tmp_path, caplog):
    new = payload[::-1]
    url = fault_server.add_file("/disk.raw", payload, honor_if_match=False)
    fault_server.add_fault(swap(new, skip=4, path="/disk.raw"))  # after 4 GETs (of 12), the file is replaced
    dest = tmp_path / "disk.raw"
    result = download(HttpRangeSource(url), dest, fast_options(connections=2))
    assert dest.read_bytes() == new and result.sha256 == sha256(new)  # wholly the new version, never a mix
    assert result.bytes_resumed == 0
    assert "changed during the download; starting over once" in caplog.text
    assert fault_server.stats.count(status=412) == 0  # the server never said so: the ETag check saw it


def test_source_that_keeps_changing_fails_with_integrity_error(fault_server, payload, tmp_path):
    url = fault_server.add_file("/disk.raw", payload, honor_if_match=False)
    fault_server.add_fault(swap(payload[::-1], skip=3, times=None, path="/disk.raw", methods=("GET",)))
    dest = tmp_path / "disk.raw"
    started = time.monotonic()
    with pytest.raises(SourceChangedError, match="changed during the download, and again after the download started over") as info:
        download(HttpRangeSource(url), dest, fast_options(connections=1))
    assert isinstance(info.value, IntegrityError) and time.monotonic() - started < 5
    assert leftovers(dest) == []


def test_412_from_a_server_that_honours_if_match_also_starts_over(fault_server, payload, tmp_path):
    new = bytes(b ^ 0x55 for b in payload)
    url = fault_server.add_file("/disk.raw", payload)
    fault_server.add_fault(swap(new, skip=5, path="/disk.raw", methods=("GET",)))
    result = download(HttpRangeSource(url), tmp_path / "disk.raw", fast_options(connections=1))
    assert result.sha256 == sha256(new)
    assert fault_server.stats.count(status=412) == 1


def test_missing_file_after_redirect_is_not_found(fault_server, tmp_path):
    fault_server.add_fault(_redirect("/gone.raw", 301))
    with pytest.raises(SourceNotFoundError):
        download(HttpRangeSource(fault_server.url("/old.raw")), tmp_path / "d.raw", TransferOptions(max_attempts=1))
