"""Errors name the parameter the way the user gave it, and bad input fails at once (exit 2, no retry)."""

from __future__ import annotations

import subprocess
import time


def _error_line(done: subprocess.CompletedProcess) -> str:
    return next((line for line in done.stderr.splitlines() if line.startswith("hyperexport: error:")), done.stderr[-2000:])


def _run(hyperexport: str, server, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([hyperexport, *args], env=server.env(), capture_output=True, text=True, timeout=timeout,
                          check=False)  # fmt: skip


def test_a_bad_option_is_named_by_its_flag(hyperexport, prefect_server, tmp_path):
    done = _run(hyperexport, prefect_server, "--provider", "aws", "--instance", "i-0123456789abcdef0",
                "--region", "moon-1", "--output", str(tmp_path / "out"), "--convert", "--converter", "qemu-img")  # fmt: skip
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    line = _error_line(done)
    assert line == "hyperexport: error: 'moon-1' is not an AWS region name; use one like us-east-1 (--region)", line
    assert "request field" not in done.stdout + done.stderr


def test_a_value_out_of_range_is_named_by_its_flag(hyperexport, prefect_server, base_raw, tmp_path):
    done = _run(hyperexport, prefect_server, "--provider", "local", "--vm", str(base_raw), "--output", str(tmp_path),
                "--connections", "0")  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    line = _error_line(done)
    assert "export.connections: Input should be greater than or equal to 1 (got 0)" in line and line.endswith("(--connections)"), line


def test_a_permanent_error_in_a_task_fails_once_with_exit_2(hyperexport, prefect_server, http_server, tmp_path):
    url = http_server.url("/no-such-disk.raw")  # 404: the export task's SourceNotFoundError
    started = time.monotonic()
    done = _run(hyperexport, prefect_server, "--provider", "local", "--vm", url, "--output", str(tmp_path / "out"),
                "--convert", "--converter", "qemu-img")  # fmt: skip
    took = time.monotonic() - started
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-3000:]
    assert "Retry 1/" not in output and "AwaitingRetry" not in output, output[-3000:]
    assert http_server.stats.count("GET") + http_server.stats.count("HEAD") <= 3, "the source was asked again and again"
    assert took < 60, f"{took:.0f}s for a refusal"
