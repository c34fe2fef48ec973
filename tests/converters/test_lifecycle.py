"""Nothing a conversion starts outlives it: not on a timeout, an exception in our code, a cancel, a SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from hyperexport import cancel, procs
from hyperexport.errors import CancelledError, ConversionTimeoutError
from hyperexport.migration import MigrationRequest, run_migration
from hyperexport.samples import make_linux_guest
from hyperexport.validate_input import build
from support.migrate import sha256

from .fakes import endless_converter
from support.procwatch import descendants


def request(source, output, *, converter="hyper2kvm", binary=None, timeout=600.0, **convert_options) -> MigrationRequest:
    config = {"timeout_seconds": timeout, **({"binary_path": str(binary)} if binary else {})}
    return build(
        MigrationRequest, provider="local", source={"source": str(source)}, export={"output_dir": str(output)},
        converter=converter, converter_config=config, convert_options=convert_options,
    )


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"{what} did not happen within {timeout:.0f}s")


def test_a_conversion_past_its_timeout_leaves_no_process(base_raw, tmp_path):
    fake = endless_converter(tmp_path / "bin")
    started = time.monotonic()
    with pytest.raises(ConversionTimeoutError) as raised:
        run_migration(request(base_raw, tmp_path / "out", binary=fake, timeout=3))
    assert time.monotonic() - started < 10
    assert raised.value.field == "converter_config.timeout_seconds"
    assert "3s timeout" in str(raised.value) and "--timeout" not in str(raised.value)
    assert descendants() == {}
    assert not list((tmp_path / "out").glob("*.qcow2*")), "no output, partial or final, after a timeout"


def test_an_exception_in_our_code_ends_the_converter(base_raw, tmp_path):
    fake = endless_converter(tmp_path / "bin")

    def log(line: str) -> None:
        if "stage FIX (appliance started)" in line:
            raise RuntimeError("the log sink broke")

    with pytest.raises(RuntimeError, match="the log sink broke"):
        run_migration(request(base_raw, tmp_path / "out", binary=fake, timeout=60), log=log)
    assert descendants() == {}


def test_cancelling_a_real_guest_fix_ends_hyper2kvm_and_its_appliance(tmp_path, monkeypatch):
    # The libguestfs appliance (qemu-system) is forked by hyper2kvm, in a process group of its own.
    monkeypatch.setenv("HYPEREXPORT_GUESTFS_ACCEL", "tcg")
    source = make_linux_guest(tmp_path / "guest.raw")
    before = sha256(source)
    outcome: dict[str, BaseException] = {}

    def migrate() -> None:
        try:
            run_migration(request(source, tmp_path / "out", fix_guest=True))
        except BaseException as error:  # noqa: BLE001 - inspected below
            outcome["error"] = error

    runner = threading.Thread(target=migrate)
    runner.start()
    try:
        appliance = wait_for(
            lambda: [cmd[:120] for cmd in descendants(("qemu-system",)).values() if " -kernel " in cmd],
            120, "the libguestfs appliance booting",
        )
        cancel.request_cancel()
        assert procs.terminate_all() >= 1
    finally:
        runner.join(timeout=30)
    assert not runner.is_alive(), "the conversion did not return within 30s of the cancel"
    assert isinstance(outcome.get("error"), CancelledError), outcome
    assert descendants() == {}, f"still running after the cancel (the appliance was {appliance})"
    assert sha256(source) == before


CHILD = textwrap.dedent("""
    import signal, sys
    from pathlib import Path
    from hyperexport import cancel, procs
    from hyperexport.errors import CancelledError
    sys.path.insert(0, sys.argv[3])
    from converters.test_lifecycle import request
    from hyperexport.migration import run_migration

    def stop(signum, frame):  # what the CLI's handler does
        cancel.request_cancel()
        procs.terminate_all()

    signal.signal(signal.SIGTERM, stop)
    try:
        run_migration(request(sys.argv[1], Path(sys.argv[2]), converter="qemu-img", custom_args=["-r", "1M"]),
                      log=lambda line: print(line, flush=True))
    except CancelledError as error:
        print(f"cancelled: {error}", flush=True)
        sys.exit(130)
""")


def test_sigterm_to_a_process_running_a_conversion_leaves_no_process(tmp_path):
    source = tmp_path / "random.raw"
    source.write_bytes(os.urandom(48 * 2**20))  # at 1 MiB/s, qemu-img is busy for 48 s
    tests_dir = os.path.dirname(os.path.dirname(__file__))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(source), str(tmp_path / "out"), tests_dir],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_for(lambda: descendants(("qemu-img convert",)), 60, "qemu-img convert starting")
        time.sleep(1)
        child.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        output, _ = child.communicate(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert time.monotonic() - stopped < 10
    assert child.returncode == 130, output
    assert "cancelled: qemu-img was stopped because the run was interrupted" in output, output
    assert descendants() == {}
    assert not list((tmp_path / "out").glob("*.qcow2*")), "the partial output is removed, no final name appears"


def test_a_child_dies_with_a_parent_killed_without_warning(tmp_path):
    """SIGKILL leaves the parent no chance to clean up: the kernel's parent-death signal ends the child."""
    parent = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from hyperexport import procs\n"
         "child = procs.spawn(['sleep', '300']); print(child.pid, flush=True); time.sleep(300)"],
        stdout=subprocess.PIPE, text=True,
    )
    child_pid = int(parent.stdout.readline())
    assert Path(f"/proc/{child_pid}").exists()
    parent.kill()
    parent.wait()

    def running() -> bool:  # a dead child may linger as a zombie of this test process (the session's subreaper)
        try:
            return Path(f"/proc/{child_pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    deadline = time.monotonic() + 5
    while running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running(), f"sleep {child_pid} outlived its SIGKILLed parent"
