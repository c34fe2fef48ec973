"""``--stream``: a raw disk behind a URL is written straight into its qcow2 or raw output while it downloads
(no staged copy, no conversion pass), proven by one read of the output; other formats are staged as before."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.fault_server import FaultServer
from support.migrate import assert_identical, sha256
from support.procwatch import daemons_serving

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


def run_stream(server, url: str, out: Path, *extra: str) -> tuple[int, str]:
    """The command a user streams a URL with: ``--convert --converter qemu-img --stream``."""
    return run_cli(server, "--provider", "local", "--vm", url, "--output", str(out), "--convert",
                   "--converter", "qemu-img", "--stream", *extra)  # fmt: skip


def report_of(out: Path) -> dict:
    return json.loads((out / "migration-report.json").read_text())


@pytest.mark.parametrize("fmt", ["qcow2", "raw"])
def test_a_raw_url_streams_into_its_output_in_one_pass(fmt, prefect_server, http_server, tmp_path):
    disk = quarter_data_disk(tmp_path / "src" / "disk.img")
    before = sha256(disk)
    url = http_server.add_file("/disk.img", disk)
    out = tmp_path / "out"

    code, err = run_stream(prefect_server, url, out, "--format", fmt)

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


def test_a_fixed_vhd_url_streams_its_disk_without_the_footer(prefect_server, http_server, base_raw, tmp_path):
    vhd = make_disk(base_raw, "vhd-fixed", tmp_path / "src")
    before = sha256(vhd)
    url = http_server.add_file("/disk.vhd", vhd, content_md5=False)  # the next test has one with an MD5
    out = tmp_path / "out"

    code, err = run_stream(prefect_server, url, out)

    assert code == cli.EXIT_OK, err
    output = out / "disk-0.qcow2"
    assert_identical(base_raw, "raw", output)  # the guest's bytes, and the footer is not inside the disk
    assert http_server.stats.bytes_served < vhd.stat().st_size + MiB
    assert not list((out / "source").rglob("*.vhd"))  # no staged copy
    (staged,) = report_of(out)["disks"]
    assert staged["virtual_size_bytes"] == base_raw.stat().st_size == vhd.stat().st_size - 512
    assert staged["sha256"] == f"sha256:{sha256(base_raw)}"
    (verdict,) = report_of(out)["validation"]["disks"]
    assert verdict["proof"] == "stream digests" and verdict["compare"] == "passed"
    assert sha256(vhd) == before


@pytest.mark.parametrize(("kind", "content_md5"), [("vmdk-sparse", True), ("vhd-dynamic", False), ("vhd-fixed", True)])
def test_a_container_format_or_a_fixed_vhd_with_a_whole_file_md5_is_staged_and_compared(
    kind, content_md5, prefect_server, http_server, base_raw, tmp_path
):
    """A sparse VMDK or a dynamic VHD needs qemu-img to read it; a fixed VHD whose server offers the file's MD5
    is staged, so that the MD5 is checked (it covers the footer, which a stream leaves out)."""
    image = make_disk(base_raw, kind, tmp_path / "src")
    url = http_server.add_file(f"/disk{image.suffix}", image, content_md5=content_md5)
    out = tmp_path / "out"

    code, err = run_stream(prefect_server, url, out)

    assert code == cli.EXIT_OK, err
    assert_identical(base_raw, "raw", out / "disk-0.qcow2")
    (verdict,) = report_of(out)["validation"]["disks"]
    assert verdict["proof"] == "qemu-img compare"
    (staged,) = report_of(out)["disks"]
    assert staged.get("streamed") is None

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

    code, err = run_stream(prefect_server, url, out)

    assert code == cli.EXIT_BAD_INPUT, err
    assert "web page" in err
    assert http_server.stats.bytes_served < 64 * 1024  # its first and last bytes only
    assert not (out / "disk-0.qcow2").exists()


def test_a_streaming_command_killed_with_sigkill_resumes_on_the_next_run(prefect_server, tmp_path):
    """The command as a user runs it, killed by SIGKILL (the OOM killer, kill -9) mid-download: its
    qemu-storage-daemon dies with it, and the same command again fetches only what is missing (plus at most one
    range per connection) and ends with an output identical to the source."""
    size, connections, chunk = 48 * MiB, 2, 8 * MiB  # chunk: the http(s) default range size
    disk = quarter_data_disk(tmp_path / "src" / "disk.img", size=size)
    before = sha256(disk)
    out = tmp_path / "out"
    command = [str(Path(sys.executable).with_name("hyperexport")), "--no-progress", "--provider", "local",
               "--vm", "URL", "--output", str(out), "--convert", "--converter", "qemu-img", "--stream",
               "--connections", str(connections)]  # fmt: skip
    with FaultServer(rate_bps=8 * MiB) as server:  # each response at 8 MiB/s: about 3 s for the disk
        url = server.add_file("/disk.img", disk)
        command[command.index("URL")] = url
        killed = subprocess.Popen(command, env=prefect_server.env(), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while server.stats.bytes_served < size * 0.4:
                assert killed.poll() is None, "the command ended before it could be killed"
                assert time.monotonic() < deadline, "the download did not get going"
                time.sleep(0.01)
            killed.send_signal(signal.SIGKILL)
        finally:
            killed.wait()
        partial = out / "disk-0.qcow2.part"
        deadline = time.monotonic() + 10
        while daemons_serving(partial) and time.monotonic() < deadline:  # the parent-death signal ends it
            time.sleep(0.05)
        assert daemons_serving(partial) == []
        assert partial.exists() and (out / "disk-0.qcow2.part.jsonl").exists() and not (out / "disk-0.qcow2").exists()
        time.sleep(0.2)  # let the server count what the dead connections were sent
        served_before = server.stats.bytes_served

        again = subprocess.run(command, env=prefect_server.env(), capture_output=True, text=True, timeout=300)

        served_after = server.stats.bytes_served - served_before
    assert again.returncode == cli.EXIT_OK, again.stderr[-3000:]
    assert_identical(disk, "raw", out / "disk-0.qcow2")
    (staged,) = report_of(out)["disks"]
    assert 0 < staged["bytes_fetched"] < size, "the second run resumed"
    # What was sent before the kill and not recorded is fetched again: at most one range per connection;
    # the sniff reads the first 4 KiB and the last 512 bytes again.
    assert served_after <= size - served_before + connections * chunk + 8 * 1024, (served_after, served_before)
    (verdict,) = report_of(out)["validation"]["disks"]
    assert verdict["proof"] == "stream digests" and verdict["compare"] == "passed"
    assert sha256(disk) == before
    assert sorted(p.name for p in out.glob("disk-0.qcow2*")) == ["disk-0.qcow2"]
