"""``--stream``: a raw disk behind a URL is written straight into its qcow2 or raw output while it downloads
(no staged copy, no conversion pass), proven by one read of the output; other formats are staged as before."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from support.migrate import assert_identical, sha256

from hyperexport import cli
from hyperexport.samples import make_disk
from test_bad_input import run_cli

MiB = 2**20


def quarter_data_disk(path: Path, size: int = 32 * MiB, piece: int = MiB) -> Path:
    """One MiB in four random, the rest zeros."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.truncate(size)
        for offset in range(0, size, 4 * piece):
            handle.seek(offset)
            handle.write(os.urandom(piece))
    return path


def report_of(out: Path) -> dict:
    return json.loads((out / "migration-report.json").read_text())


@pytest.mark.parametrize("fmt", ["qcow2", "raw"])
def test_a_raw_url_streams_into_its_output_in_one_pass(fmt, prefect_server, http_server, tmp_path):
    disk = quarter_data_disk(tmp_path / "src" / "disk.img")
    before = sha256(disk)
    url = http_server.add_file("/disk.img", disk)
    out = tmp_path / "out"

    code, err = run_cli(prefect_server, "--provider", "local", "--vm", url, "--output", str(out), "--convert",
                        "--converter", "qemu-img", "--format", fmt, "--stream")  # fmt: skip

    assert code == cli.EXIT_OK, err
    output = out / f"disk-0.{fmt}"
    assert_identical(disk, "raw", output, fmt)
    assert http_server.stats.bytes_served < disk.stat().st_size + MiB  # read once (and its first and last bytes)
    assert not list((out / "source").rglob("*.img"))  # no staged copy
    assert output.stat().st_blocks * 512 <= disk.stat().st_size // 4 + MiB  # zeros stayed holes
    report = report_of(out)
    (verdict,) = report["validation"]["disks"]
    assert verdict["proof"] == "stream digests" and verdict["compare"] == "passed"
    assert verdict["check"] == "passed"  # qemu-img check of the qcow2; a raw file has no checker and passes
    size = disk.stat().st_size
    ranges = size // (8 * MiB)  # the http(s) default range size
    assert (
        f"{ranges} ranges matched the xxh3-128 digests of the bytes as they arrived: {size // 4} bytes read back "
        f"from the {fmt} output, {size - size // 4} bytes that arrived as zeros left as holes"
    ) in verdict["compare_evidence"]
    (staged,) = report["disks"]
    assert staged["streamed"]["bytes_checked"] == size // 4 and staged["streamed"]["bytes_zero"] == size - size // 4
    assert staged["sha256"] == f"sha256:{before}"
    assert sha256(disk) == before


def test_a_vmdk_url_with_stream_is_staged_and_compared(prefect_server, http_server, base_raw, tmp_path):
    vmdk = make_disk(base_raw, "vmdk-sparse", tmp_path / "src")
    url = http_server.add_file("/disk.vmdk", vmdk)
    out = tmp_path / "out"

    code, err = run_cli(prefect_server, "--provider", "local", "--vm", url, "--output", str(out), "--convert",
                        "--converter", "qemu-img", "--stream")  # fmt: skip

    assert code == cli.EXIT_OK, err
    assert_identical(base_raw, "raw", out / "disk-0.qcow2")
    (verdict,) = report_of(out)["validation"]["disks"]
    assert verdict["proof"] == "qemu-img compare"


def test_stream_with_guest_fixes_is_refused_at_once(prefect_server, http_server, tmp_path):
    disk = quarter_data_disk(tmp_path / "src" / "disk.img", size=4 * MiB)
    url = http_server.add_file("/disk.img", disk)
    started = time.monotonic()

    code, err = run_cli(prefect_server, "--provider", "local", "--vm", url, "--output", str(tmp_path / "out"),
                        "--convert", "--fix", "--stream")  # fmt: skip

    assert code == cli.EXIT_BAD_INPUT
    assert "export.stream" in err and "hyper2kvm converter reads a finished disk" in err and "--fix" in err
    assert http_server.stats.bytes_served == 0
    assert time.monotonic() - started < 60


def test_a_web_page_behind_a_stream_url_is_refused_before_the_download(prefect_server, http_server, tmp_path):
    page = b"<!DOCTYPE html><html><body>Please log in</body></html>" + b" " * (8 * MiB)
    url = http_server.add_file("/disk.img", page)
    out = tmp_path / "out"

    code, err = run_cli(prefect_server, "--provider", "local", "--vm", url, "--output", str(out), "--convert",
                        "--converter", "qemu-img", "--stream")  # fmt: skip

    assert code == cli.EXIT_BAD_INPUT, err
    assert "web page" in err
    assert http_server.stats.bytes_served < 64 * 1024  # its first and last bytes only
    assert not (out / "disk-0.qcow2").exists()
