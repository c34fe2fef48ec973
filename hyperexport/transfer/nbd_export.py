"""Serve a disk image over NBD on a unix socket with qemu-storage-daemon, for one download only.

The daemon runs through ``procs.spawn`` (own session, parent-death signal, memory limit) and is registered
with ``procs``, so a cancel or a shutdown ends it too. The image's format is given, never probed, and a
qcow2's backing file is never opened (``"backing": null``): a planted partial image cannot make the daemon
read another file of the host.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .. import cancel, procs
from ..errors import ConverterNotFoundError, TransferError

EXPORT_NAME = "disk"
#: AF_UNIX paths hold at most 107 bytes.
MAX_SOCKET_PATH = 107
DAEMON_LIMITS = procs.Limits(timeout_s=None, memory_bytes=2 * 2**30, cpu_s=None)
STOP_TIMEOUT_S = 60.0


def daemon_binary() -> str:
    found = shutil.which("qemu-storage-daemon")
    if found is None:
        raise ConverterNotFoundError(
            "qemu-storage-daemon is not installed; install it with 'apt-get install qemu-system-common' "
            "(Debian/Ubuntu) or 'dnf install qemu-storage-daemon' (Fedora/RHEL)"
        )
    return found


def daemon_command(
    image: Path, fmt: str, socket_path: str, *, writable: bool, connections: int, flush_to_disk: bool = True
) -> list[str]:
    """``flush_to_disk=False``: an NBD flush writes the daemon's caches (qcow2 L2 tables, refcounts) to the
    file but does not fdatasync it (``cache.no-flush``): what was flushed survives the daemon's death (the
    page cache keeps it), not the host's; the client fdatasyncs the file itself when it needs that."""
    # JSON arguments: a file name with commas needs no keyval escaping.
    file_node = {"driver": "file", "node-name": "file", "filename": str(image.absolute()), "read-only": not writable}
    fmt_node: dict = {"driver": fmt, "node-name": "fmt", "file": "file", "read-only": not writable}
    if not flush_to_disk:
        file_node["cache"] = fmt_node["cache"] = {"direct": False, "no-flush": True}
    if fmt == "qcow2":
        fmt_node["backing"] = None
    server = {"addr": {"type": "unix", "path": socket_path}, "max-connections": connections}
    export = {"type": "nbd", "id": "export", "node-name": "fmt", "name": EXPORT_NAME, "writable": writable}
    return [
        daemon_binary(), "--blockdev", json.dumps(file_node), "--blockdev", json.dumps(fmt_node),
        "--nbd-server", json.dumps(server), "--export", json.dumps(export),
    ]  # fmt: skip


class ImageServer:
    """``start()`` serves ``image`` and returns the socket path (export ``EXPORT_NAME``); ``stop()`` ends it.

    ``connections``: how many clients may be connected at once (the readiness probe is added);
    ``flush_to_disk``: as ``daemon_command`` takes it.
    """

    def __init__(self, image: Path, fmt: str, *, writable: bool, connections: int, flush_to_disk: bool = True) -> None:
        self.image, self.fmt, self.writable, self.connections = image, fmt, writable, connections
        self.flush_to_disk = flush_to_disk
        self._proc: subprocess.Popen | None = None
        self._private: tempfile.TemporaryDirectory | None = None
        self.socket_path = ""

    def _choose_socket(self) -> str:
        beside = str(self.image.absolute().parent / f".{self.image.name}.{os.getpid()}.nbd")
        if len(beside.encode()) <= MAX_SOCKET_PATH:
            return beside
        self._private = tempfile.TemporaryDirectory(prefix="hx-nbd-")  # created 0700
        return os.path.join(self._private.name, "s")

    def start(self) -> str:
        self.socket_path = self._choose_socket()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        cmd = daemon_command(self.image, self.fmt, self.socket_path, writable=self.writable,
                             connections=self.connections + 1, flush_to_disk=self.flush_to_disk)  # fmt: skip
        self._proc = procs.spawn(cmd, DAEMON_LIMITS, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            self._wait_ready(30.0)
        except BaseException:
            self.stop(graceful=False)
            raise
        return self.socket_path

    def _wait_ready(self, deadline_s: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + deadline_s
        while True:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise TransferError(
                    f"qemu-storage-daemon exited ({self._proc.returncode}) before serving {self.image.name}: {err.strip()}"
                )
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as probe:
                probe.connect(self.socket_path)
                return
            cancel.raise_if_cancelled()
            if time.monotonic() > deadline:
                raise TransferError(f"qemu-storage-daemon did not serve {self.image.name} within {deadline_s:.0f}s")
            time.sleep(0.02)

    def stop(self, *, graceful: bool) -> None:
        """``graceful``: SIGTERM and wait, so the daemon flushes and closes the image; an exit status other
        than 0 is a ``TransferError``. Otherwise the tree is killed. Always reaped; safe to call twice."""
        proc, self._proc = self._proc, None
        try:
            if proc is not None:
                if graceful and proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=STOP_TIMEOUT_S)
                    except subprocess.TimeoutExpired:
                        procs.kill_tree(proc, grace_s=0.0)
                        raise TransferError(
                            f"qemu-storage-daemon did not close {self.image.name} within {STOP_TIMEOUT_S:.0f}s"
                        ) from None
                procs.kill_tree(proc, grace_s=0.0)
                if graceful and proc.returncode != 0:
                    err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
                    raise TransferError(f"qemu-storage-daemon failed closing {self.image.name} (exit {proc.returncode}): {err}")
        finally:
            if self.socket_path and self._private is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.socket_path)
            if self._private is not None:
                self._private.cleanup()
                self._private = None
