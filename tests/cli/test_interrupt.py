"""Ctrl-C mid-download with the temporary server: exit 130 in seconds, no traceback, and the rerun resumes.

The rerun is also the successful offline run whose output must hold no ERROR and no traceback (the temporary
server's telemetry, which fails on hosts without internet, is off unless the user turns it on)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import httpx
from support.migrate import assert_identical

MIB = 2**20
CHUNK = 8 * MIB  # the http source's request size (hyperexport/transfer/options.py)


def _bytes_served(server, path: str) -> int:
    return sum(r.bytes_sent for r in server.stats.log if r.path == path)


def _wait_for_bytes(server, path: str, proc: subprocess.Popen, at_least: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the command ended before the download got going: {proc.stdout.read()}"
        if _bytes_served(server, path) >= at_least:
            return
        time.sleep(0.1)
    raise AssertionError(f"{path}: fewer than {at_least} bytes served after {timeout}s")


def test_ctrl_c_mid_download_exits_130_and_the_same_command_resumes(hyperexport, disk_server, embedded_env, tmp_path):
    path = "/ctrl-c-vm.raw"
    url = disk_server.add_file(path, disk_server.raw)
    size = disk_server.raw.stat().st_size
    out = tmp_path / "out"
    command = [hyperexport, "--provider", "local", "--vm", url, "--output", str(out), "--convert",
               "--converter", "qemu-img", "--connections", "1", "--no-progress"]  # fmt: skip

    # The terminal's Ctrl-C goes to the whole foreground process group: the command gets a group of its own.
    proc = subprocess.Popen([*command, "--bandwidth-limit", str(2 * MIB)], env=embedded_env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
    # Past the first 8 MiB request (http's chunk): what a kill loses is the chunk in flight, never a finished one.
    _wait_for_bytes(disk_server, path, proc, at_least=CHUNK + 2 * MIB, timeout=120)
    interrupted = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    took = time.monotonic() - interrupted

    assert proc.returncode == 130, output[-3000:]
    assert took < 10, f"exit took {took:.1f}s after SIGINT"
    assert "Traceback" not in output, output[-3000:]
    assert re.search(r"Finished in state Cancelled", output), output[-3000:]
    assert "run the same command again to resume" in output
    fetched_first = _bytes_served(disk_server, path)
    assert CHUNK + 2 * MIB <= fetched_first < size
    assert list(out.rglob("*.part")), "the partial download is gone"
    assert not list(out.glob("*.qcow2"))
    # The temporary server stopped with the command.
    port = re.search(r"starting a temporary Prefect server on http://127\.0\.0\.1:(\d+)", output).group(1)
    try:
        httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2)
        raise AssertionError(f"the temporary server on port {port} outlived the command")
    except httpx.ConnectError:
        pass

    again = subprocess.run(command, env=embedded_env, capture_output=True, text=True, timeout=300, check=False)

    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    for sign in ("ERROR", "Traceback"):
        assert sign not in again.stdout + again.stderr, (again.stdout + again.stderr)[-3000:]
    fetched_again = _bytes_served(disk_server, path) - fetched_first
    assert fetched_again <= size - CHUNK, f"the rerun fetched {fetched_again} of {size} bytes: it did not resume"
    assert_identical(disk_server.raw, "raw", out / "disk-0.qcow2")


def test_sigterm_with_an_external_server_records_the_run_cancelled(hyperexport, prefect_server, disk_server, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    path = "/sigterm-vm.raw"
    url = disk_server.add_file(path, disk_server.raw)
    out = tmp_path / "out"
    proc = subprocess.Popen([hyperexport, "--provider", "local", "--vm", url, "--output", str(out), "--convert",
                             "--converter", "qemu-img", "--connections", "1", "--bandwidth-limit", str(2 * MIB)],
                            env=prefect_server.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # fmt: skip
    _wait_for_bytes(disk_server, path, proc, at_least=MIB, timeout=120)
    stopped = time.monotonic()
    proc.send_signal(signal.SIGTERM)  # as a service manager or `timeout` does: the command only
    output, _ = proc.communicate(timeout=60)

    assert proc.returncode == 128 + signal.SIGTERM, output[-3000:]
    assert time.monotonic() - stopped < 10
    assert "Traceback" not in output, output[-3000:]
    name = re.search(r"Beginning flow run '([^']+)'", output).group(1)
    with get_client(sync_client=True) as client:
        [run] = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])))
    assert run.state.type.value == "CANCELLED", run.state
    assert "run it again to resume" in (run.state.message or "")
