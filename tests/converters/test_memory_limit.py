"""qemu-img convert runs under an address-space cap: an image that makes it allocate without end is stopped at
once, with exit 2 and a message that names the limit, and nothing is left behind."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hyperexport import cli
from hyperexport.converters.process import MEMORY_FIELD
from hyperexport.converters.qemu_img import convert_disk
from hyperexport.errors import ResourceLimitError
from hyperexport.models import ConverterConfig, ConvertOptions
from support.migrate import assert_identical

# Below what qemu-img needs to start its threads: the same path a hostile image takes when it makes qemu-img
# allocate past the cap.
TOO_LITTLE_MIB = 64


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_default_limit_leaves_room_for_a_real_conversion(base_raw, tmp_path):
    assert ConverterConfig().qemu_img_memory_bytes == 2 * 2**30
    dest = convert_disk(base_raw, "raw", tmp_path / "disk-0.qcow2", ConvertOptions(), timeout=120)
    assert_identical(base_raw, "raw", dest)


def test_a_conversion_that_runs_out_of_its_memory_limit_fails_at_once_and_leaves_nothing(base_raw, tmp_path):
    before = _sha256(base_raw)
    out = tmp_path / "out"
    started = time.monotonic()
    with pytest.raises(ResourceLimitError) as caught:
        convert_disk(base_raw, "raw", out / "disk-0.qcow2", ConvertOptions(), timeout=120,
                     memory_bytes=TOO_LITTLE_MIB * 2**20)  # fmt: skip
    elapsed = time.monotonic() - started

    error = caught.value
    assert not error.retryable, "a memory limit cuts the same image off again: no retry"
    assert error.field == MEMORY_FIELD
    assert f"{TOO_LITTLE_MIB} MiB address-space limit" in str(error)
    assert "Cannot allocate memory" in str(error) or "Resource temporarily unavailable" in str(error), str(error)
    assert elapsed < 30, f"took {elapsed:.1f}s"
    assert list(out.iterdir()) == [], "neither the output nor its partial file is left"
    assert _sha256(base_raw) == before


def test_the_command_line_limit_reaches_qemu_img_and_fails_the_run_with_exit_2(prefect_server, base_raw, tmp_path):
    before = _sha256(base_raw)
    out = tmp_path / "out"
    command = [
        str(Path(sys.executable).with_name("hyperexport")), "--no-progress", "--provider", "local",
        "--vm", str(base_raw), "--output", str(out), "--convert", "--qemu-img-memory", str(TOO_LITTLE_MIB),
    ]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.run(command, env=prefect_server.env(), capture_output=True, text=True, timeout=180)
    elapsed = time.monotonic() - started

    assert proc.returncode == cli.EXIT_BAD_INPUT, proc.stderr
    error = [line for line in proc.stderr.splitlines() if line.startswith("hyperexport: error:")]
    assert error and f"{TOO_LITTLE_MIB} MiB address-space limit" in error[0], proc.stderr
    assert "(--qemu-img-memory)" in proc.stderr, "the message names the flag that raises the limit"
    assert elapsed < 60, f"the run took {elapsed:.1f}s: it was retried"
    assert not list(out.glob("*.qcow2")) and not list(out.glob("*.part")), sorted(p.name for p in out.iterdir())
    assert _sha256(base_raw) == before
