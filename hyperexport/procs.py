"""Every subprocess hyperexport starts runs bounded and dies with the run.

A child is started in its own session (so its whole tree can be killed at
once), under ``prlimit`` memory and CPU limits, with a wall-clock timeout, and
is registered while it lives: ``terminate_all`` (called on SIGINT/SIGTERM, on
task cancellation and by the test harness) ends every tree still running.
Hostile images make qemu-img hang on a FIFO extent or allocate without end;
a limit turns that into a ``ResourceLimitError`` in seconds.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from .errors import ResourceLimitError

_live: dict[int, subprocess.Popen] = {}
# Reentrant: terminate_all may run in a signal handler that interrupted spawn or kill_tree in the same thread.
_live_lock = threading.RLock()
_terminated: set[int] = set()


@dataclass(frozen=True)
class Limits:
    """Bounds for one subprocess: wall-clock seconds, address space and CPU seconds (None: unbounded)."""

    timeout_s: float | None = 120.0
    memory_bytes: int | None = 2 * 2**30
    cpu_s: int | None = None


# qemu-img info/check on a hostile header must answer in seconds; a real image's metadata does.
INSPECT = Limits(timeout_s=60.0, memory_bytes=1 * 2**30, cpu_s=60)


# setpriv sets the parent-death signal after the fork: a parent killed in between leaves the child unsignalled
# for good. So the child first checks that its parent is still the process that started it.
_PARENT_GUARD = 'test "$PPID" = "$1" || exit 137; shift; exec "$@"'


def _parent_guard() -> list[str]:
    return ["/bin/sh", "-c", _PARENT_GUARD, "hyperexport-parent-guard", str(os.getpid())]


def limited_command(cmd: Sequence[str], limits: Limits) -> list[str]:
    """``cmd`` wrapped in util-linux's setpriv and prlimit (where installed).

    setpriv's parent-death signal: a child in a session of its own survives a
    parent killed without a chance to clean up (SIGKILL, an OOM kill, a test
    runner's timeout); with it the kernel kills the child too. prlimit sets the
    memory and CPU limits.
    """
    setpriv = shutil.which("setpriv")
    prlimit = shutil.which("prlimit")
    wrapper: list[str] = [setpriv, "--pdeathsig", "KILL", "--", *_parent_guard()] if setpriv else []
    if prlimit and (limits.memory_bytes or limits.cpu_s):
        wrapper.append(prlimit)
        if limits.memory_bytes:
            wrapper.append(f"--as={limits.memory_bytes}")
        if limits.cpu_s:
            wrapper.append(f"--cpu={limits.cpu_s}")
        wrapper.append("--")
    return [*wrapper, *cmd]


def spawn(cmd: Sequence[str], limits: Limits = Limits(), **popen_kwargs) -> subprocess.Popen:
    """Start ``cmd`` in a new session under ``limits`` and register it until ``reap`` or ``kill_tree``."""
    popen_kwargs.setdefault("stdin", subprocess.DEVNULL)
    if limits.memory_bytes:
        # glibc reserves 64 MiB of address space per malloc arena and makes up to eight per core, so an
        # address-space cap would depend on the host's core count: qemu-img convert needed 1 to 1.5 GiB of it
        # on two cores with the default arenas, at most 0.5 GiB with two.
        env = popen_kwargs.get("env")
        popen_kwargs["env"] = {"MALLOC_ARENA_MAX": "2", **(os.environ if env is None else env)}
    proc = subprocess.Popen(limited_command(cmd, limits), start_new_session=True, **popen_kwargs)
    with _live_lock:
        _live[proc.pid] = proc
        _terminated.discard(proc.pid)
    return proc


def kill_tree(proc: subprocess.Popen, grace_s: float = 2.0) -> None:
    """SIGTERM the tree, then SIGKILL what is left after ``grace_s``; always reaps.

    The tree is the child's session, not only its process group: libguestfs puts the qemu-system it
    forks (and its recovery process) in process groups of their own, in the same session.
    """
    try:
        if proc.poll() is None:
            signal_tree(proc, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace_s)
        # The leader may be gone while its children (qemu-system under hyper2kvm) still run.
        signal_tree(proc, signal.SIGKILL)
        # Bounded: in a signal handler, the interrupted frame may hold the Popen's wait lock; the
        # SIGKILL above makes the leader die, and whoever holds the lock reaps it.
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    finally:
        _forget(proc)


def signal_tree(proc: subprocess.Popen, sig: int) -> None:
    """Send ``sig`` to the child's process group and to every process of its session."""
    _signal_group(proc.pid, sig)
    for pid in session_members(proc.pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def session_members(sid: int) -> list[int]:
    """Pids of the live processes whose session id is ``sid`` (the kernel keeps the id from being reused
    while one of them lives, so this never names a stranger)."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        # After the command: state, ppid, pgrp, session.
        if int(fields[3]) == sid and fields[0] not in (b"Z", b"X"):
            members.append(int(entry.name))
    return members


def reap(proc: subprocess.Popen) -> None:
    """The leader exited by itself: end anything it left in its group, and forget it."""
    kill_tree(proc, grace_s=0.0)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _forget(proc: subprocess.Popen) -> None:
    with _live_lock:
        _live.pop(proc.pid, None)


def live() -> list[subprocess.Popen]:
    with _live_lock:
        return list(_live.values())


def was_terminated(proc: subprocess.Popen) -> bool:
    """True when ``terminate_all`` ended this process (a shutdown, not a failure of its own)."""
    with _live_lock:
        return proc.pid in _terminated


def terminate_all(grace_s: float = 2.0) -> int:
    """End every registered process tree; returns how many were still running. Safe in a signal handler."""
    running = [p for p in live() if p.poll() is None]
    with _live_lock:
        _terminated.update(p.pid for p in running)
    for proc in running:
        signal_tree(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in running:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    for proc in live():
        kill_tree(proc, grace_s=0.0)
    return len(running)


@contextlib.contextmanager
def supervised(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """Whatever happens in the block (an exception, KeyboardInterrupt), the tree is gone after it."""
    try:
        yield proc
    finally:
        kill_tree(proc, grace_s=0.5 if proc.poll() is None else 0.0)


def run_bounded(
    cmd: Sequence[str],
    *,
    limits: Limits = Limits(),
    what: str,
    env: dict[str, str] | None = None,
    text: bool = True,
) -> subprocess.CompletedProcess:
    """Run ``cmd`` to completion under ``limits``, capturing its output.

    Past the timeout, or killed by the CPU or memory limit (SIGXCPU, SIGKILL,
    or an allocation failure), it raises ``ResourceLimitError`` naming ``what``.
    """
    proc = spawn(cmd, limits, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=text)
    with supervised(proc):
        try:
            stdout, stderr = proc.communicate(timeout=limits.timeout_s)
        except subprocess.TimeoutExpired:
            raise ResourceLimitError(
                f"{what} ran past its {limits.timeout_s:.0f}s limit and was stopped; the image is hostile "
                "(an extent on a FIFO or device) or far larger than it claims"
            ) from None
    if proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL) or (
        limits.memory_bytes and proc.returncode != 0 and "Cannot allocate memory" in (stderr or "")
    ):
        raise ResourceLimitError(
            f"{what} was stopped by its resource limit (exit {proc.returncode}; "
            f"memory {limits.memory_bytes or 'unbounded'} bytes, CPU {limits.cpu_s or 'unbounded'} s); "
            "the image makes qemu-img work without end"
        )
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
