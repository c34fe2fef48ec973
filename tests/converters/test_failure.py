"""A converter that fails on its own fails the run once, fast, with its own words in the message."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from hyperexport import cli
from hyperexport.migration import run_migration
from support.migrate import local_request

from .fakes import failing_converter


def test_a_converter_that_exits_1_fails_the_run_once_with_its_stderr_tail(prefect_server, base_raw, tmp_path):
    calls = tmp_path / "calls.log"
    fake = failing_converter(tmp_path / "bin", calls)
    command = [
        str(Path(sys.executable).with_name("hyperexport")), "--no-progress", "--provider", "local", "--vm", str(base_raw),
        "--output", str(tmp_path / "out"), "--convert", "--converter-binary", str(fake),
    ]
    started = time.monotonic()
    proc = subprocess.run(command, env=prefect_server.env(), capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - started

    assert proc.returncode == cli.EXIT_BAD_INPUT, proc.stderr
    error = [line for line in proc.stderr.splitlines() if line.startswith("hyperexport: error:")]
    assert error and "hyper2kvm failed with exit code 1" in error[0], proc.stderr
    assert "ERROR: disk-0: no partition table found, cannot fix this guest" in proc.stderr
    assert "Artifact Manifest v1 Conversion Pipeline" in proc.stderr, "the tail keeps the converter's last lines"
    assert "\x1b[" not in proc.stderr and "\u274c" not in proc.stderr and "=" * 20 not in proc.stderr.split("error:", 1)[1]
    assert "no error recorded" not in proc.stderr
    assert len(calls.read_text().splitlines()) == 1, "a converter that failed on its own is not retried"
    # About 7.5 s on a quiet machine (the target is 15 s); the bound leaves room for a loaded CI box.
    # That the converter ran once, not retried, is proved by the invocation count.
    assert elapsed < 25, f"the failing run took {elapsed:.1f}s"


def test_hyper2kvm_banner_is_folded_out_of_the_run_log(base_raw, tmp_path):
    lines: list[str] = []
    report = run_migration(local_request(base_raw, tmp_path / "out"), log=lines.append)
    assert report.success
    from_hyper2kvm = [line for line in lines if line.startswith("hyper2kvm: ") and " running " not in line]
    assert from_hyper2kvm[-1].endswith("detail line(s) not shown (verbose output shows them; its report has the details)")
    assert len(from_hyper2kvm) <= 4, from_hyper2kvm
    assert "hyper2kvm: Pipeline completed successfully" in " ".join(from_hyper2kvm)
    assert all(line.isascii() and "=====" not in line for line in from_hyper2kvm), from_hyper2kvm
