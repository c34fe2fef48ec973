"""Run a converter subprocess: output streamed line by line, its whole tree ended with the task.

The converter runs in a session of its own, registered with ``procs`` (so ``terminate_all``
on SIGINT/SIGTERM ends it), and a watcher ends the session on the timeout, on
``cancel.request_cancel()``, or when the caller's ``stop`` event is set. When the leader
exits, whatever it left behind in its session (libguestfs's qemu-system, its recovery
process) is killed too, so nothing outlives the run and no orphan holds the pipe open.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import cancel, procs
from ..errors import (
    CancelledError, ConversionError, ConversionTimeoutError, ConverterFailedError, HyperExportError, ResourceLimitError,
)
from .output import Tail, clean

# A converter with guest fixes gets no memory or CPU rlimit: qemu-system reserves far more address space
# than it uses, and a conversion may rightly take hours of CPU. The watcher bounds the wall clock.
UNBOUNDED = procs.Limits(timeout_s=None, memory_bytes=None, cpu_s=None)
MEMORY_FIELD = "converter_config.qemu_img_memory_bytes"
#: What a process says when an allocation failed: glib's and qemu's aborts, and strerror(ENOMEM/EAGAIN).
_OUT_OF_MEMORY = ("Cannot allocate memory", "failed to allocate", "qemu_thread_create: Resource temporarily unavailable")
TIMEOUT_FIELD = "converter_config.timeout_seconds"
_LINE_END = re.compile(rb"[\r\n]")


@dataclass
class Finished:
    code: int
    tail: Tail


def run_streaming(
    cmd: list[str],
    *,
    env: dict[str, str] | None,
    cwd: Path | None,
    timeout: float,
    on_line: Callable[[str], None],
    stop: threading.Event | None = None,
    memory_bytes: int | None = None,
) -> Finished:
    """Run ``cmd`` to its end, its address space capped at ``memory_bytes`` (None: uncapped); raise
    ``ConversionTimeoutError`` or ``CancelledError`` when it was ended early, ``ResourceLimitError`` when it
    failed for want of memory under the cap."""
    cancel.raise_if_cancelled()
    name = Path(cmd[0]).name
    limits = procs.Limits(timeout_s=None, memory_bytes=memory_bytes, cpu_s=None)
    proc = procs.spawn(cmd, limits, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    tail = Tail()
    ended_by: list[str] = []
    done = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while not done.wait(0.2):
            if proc.poll() is not None:
                procs.signal_tree(proc, signal.SIGKILL)
                return
            reason = (
                "cancelled" if cancel.cancelled()
                else "stopped" if stop is not None and stop.is_set()
                else "timeout" if time.monotonic() >= deadline
                else None
            )
            if reason:
                ended_by.append(reason)
                procs.kill_tree(proc, grace_s=2.0)
                return

    watcher = threading.Thread(target=watch, name=f"watch-{name}", daemon=True)
    stdout = proc.stdout
    assert stdout is not None  # spawned with stdout=PIPE
    with procs.supervised(proc):
        watcher.start()
        try:
            fd, pending = stdout.fileno(), b""
            while chunk := os.read(fd, 65536):
                *lines, pending = _LINE_END.split(pending + chunk)
                for line in lines:
                    _emit(line, tail, on_line)
            _emit(pending, tail, on_line)
            code = proc.wait()
        finally:
            done.set()
            watcher.join()
            stdout.close()
    if ended_by == ["timeout"]:
        raise ConversionTimeoutError(
            f"{name} ran past its {timeout:.0f}s timeout and was stopped with every process it started; "
            "raise the converter timeout for large disks or slow guest fixes",
            field=TIMEOUT_FIELD,
        )
    if ended_by or procs.was_terminated(proc):
        raise CancelledError(f"{name} was stopped because the run was interrupted; run the same command again to start over")
    if memory_bytes and code != 0 and any(marker in line for line in tail.lines for marker in _OUT_OF_MEMORY):
        raise ResourceLimitError(
            f"{name} ran out of its {memory_bytes / 2**20:.0f} MiB address-space limit (exit {code}): the image "
            f"makes it allocate without end, or needs more than the limit; raise the limit only for an image you "
            f"trust. Its last output:{tail.text()}",
            field=MEMORY_FIELD,
        )
    return Finished(code, tail)


def _emit(raw: bytes, tail: Tail, on_line: Callable[[str], None]) -> None:
    text = raw.decode(errors="replace").rstrip()
    if text.strip():
        tail.add(clean(text))
        on_line(text)


def failure(what: str, finished: Finished, *, hint: str = "", transient: bool = False) -> HyperExportError:
    """The error for a converter that ended on its own with a non-zero code.

    Exit codes are the converter's verdict on this input: permanent (``ConverterFailedError``),
    never retried. A signal we did not send (the kernel's out-of-memory killer, an operator's
    kill) may not recur: transient. So is what the caller knows can heal (``transient``).
    """
    if finished.code < 0:
        try:
            signame = signal.Signals(-finished.code).name
        except ValueError:
            signame = f"signal {-finished.code}"
        return ConversionError(
            f"{what} was killed by {signame}, which hyperexport did not send (the kernel's out-of-memory killer "
            f"or an operator); free memory on this host and run again. Its last output:{finished.tail.text()}"
        )
    kind = ConversionError if transient else ConverterFailedError
    return kind(f"{what} failed with exit code {finished.code}{hint}. Its last output:{finished.tail.text()}")
