"""A real smbd (Debian's Samba) for the hyperv tests: unprivileged port on 127.0.0.1, everything under one tmp dir.

Its own smb.conf, tdbsam passdb, lock, state, cache and pid directories; one user added with ``smbpasswd -a``
(mapped onto the Unix user smbd runs as, so the shares' tmp directories are readable); started in the
foreground in a session of its own (its per-connection children stay in that process group), stopped with it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from support.procwatch import die_with_parent

SMB_USER = "migrator"
SMB_PASSWORD = "Smb-Pa55-w0rd!"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Samba:
    """``shares`` maps share names to directories; ``denied`` shares refuse the user; ``options`` adds smb.conf lines
    to a share."""

    def __init__(self, home: Path, shares: dict[str, Path], denied: tuple[str, ...] = (),
                 options: dict[str, list[str]] | None = None) -> None:
        self.home, self.shares, self.denied, self.options = home, shares, denied, options or {}
        self.port = _free_port()
        self.conf = home / "smb.conf"
        self.log = home / "smbd.log"
        self.proc: subprocess.Popen | None = None

    def _write_conf(self) -> None:
        unix_user = os.environ.get("USER") or "root"
        unix_user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip() or unix_user
        (self.home / "users.map").write_text(f"{unix_user} = {SMB_USER}\n")
        dirs = {name: self.home / name for name in ("private", "lock", "state", "cache", "pid", "ncalrpc")}
        for directory in dirs.values():
            directory.mkdir(parents=True, exist_ok=True)
        lines = [
            "[global]",
            "server role = standalone server",
            f"smb ports = {self.port}",
            "interfaces = 127.0.0.1",
            "bind interfaces only = yes",
            f"private dir = {dirs['private']}",
            f"lock directory = {dirs['lock']}",
            f"state directory = {dirs['state']}",
            f"cache directory = {dirs['cache']}",
            f"pid directory = {dirs['pid']}",
            f"ncalrpc dir = {dirs['ncalrpc']}",
            f"passdb backend = tdbsam:{dirs['private']}/passdb.tdb",
            f"username map = {self.home / 'users.map'}",
            f"log file = {self.log}",
            "log level = 1",
            "load printers = no",
            "printcap name = /dev/null",
            "disable spoolss = yes",
            "disable netbios = yes",
            "server min protocol = SMB2_10",
            "map to guest = never",
            "",
        ]
        for name, path in self.shares.items():
            lines += [f"[{name}]", f"path = {path}", "read only = no", "browseable = yes"]
            if name in self.denied:
                lines.append("valid users = nobody")
            lines += [*self.options.get(name, []), ""]
        self.conf.write_text("\n".join(lines))
        subprocess.run(
            ["smbpasswd", "-c", str(self.conf), "-s", "-a", unix_user],
            input=f"{SMB_PASSWORD}\n{SMB_PASSWORD}\n", text=True, capture_output=True, check=True,
        )

    def start(self, timeout: float = 30.0) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self._write_conf()
        self.proc = subprocess.Popen(
            ["smbd", "-F", "--no-process-group", "--debug-stdout", "-s", str(self.conf)],
            stdout=open(self.log.with_suffix(".out"), "ab"), stderr=subprocess.STDOUT, start_new_session=True,  # noqa: SIM115
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"smbd exited: {self.log.with_suffix('.out').read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"smbd did not listen on {self.port} within {timeout}s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)  # smbd and its per-connection children: its own process group
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def __enter__(self) -> Samba:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
