"""Run a converter subprocess: output streamed line by line, the whole process group killed on timeout."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path

from ..errors import ConversionTimeoutError
from .base import LogLine


def run_streaming(
    cmd: list[str], *, env: dict[str, str], cwd: Path | None, timeout: float, log: LogLine, prefix: str = ""
) -> int:
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env=env, cwd=cwd, text=True, errors="replace", bufsize=1, start_new_session=True,
    )
    timed_out = threading.Event()

    def kill_group() -> None:
        timed_out.set()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, kill_group)
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            log(prefix + line.rstrip())
        code = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            kill_group()
            proc.wait()
    if timed_out.is_set():
        raise ConversionTimeoutError(
            f"{Path(cmd[0]).name} ran past its {timeout:.0f}s timeout and was stopped (its whole process group); "
            "raise the timeout (--timeout / ConverterConfig.timeout_seconds) for large disks"
        )
    return code
