"""A throwaway PostgreSQL cluster on 127.0.0.1 for the session's Prefect server.

Prefect's SQLite database serialises every write; with a worker polling, the scheduler, the zombie automation and
the tests' own runs on a two-core machine, a write waited up to 60 s for the lock ("database is locked"), and a
bad-input run that is refused in seconds took 70. PostgreSQL is also what Prefect asks of a server that workers
share, so the tests run the server the way a fleet does.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

_OWNER = "postgres"  # PostgreSQL refuses to run as root: as root, the cluster belongs to Debian's postgres user


def _bindir() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    if not candidates:
        raise RuntimeError("PostgreSQL is not installed: run `make test-deps` (Debian package postgresql)")
    return candidates[-1].parent


class PostgresCluster:
    """``initdb`` + ``postgres`` in a directory of their own, trust authentication on loopback only."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.data = root / "data"
        self.log = root / "postgres.log"
        self.bindir = _bindir()
        self.proc: subprocess.Popen | None = None

    def _as_owner(self, command: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return command
        return ["setpriv", f"--reuid={_OWNER}", f"--regid={_OWNER}", "--init-groups", "--pdeathsig", "KILL", *command]

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{_OWNER}@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 60.0) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            owner = pwd.getpwnam(_OWNER)
            shutil.chown(self.root, owner.pw_uid, owner.pw_gid)
        subprocess.run(
            self._as_owner([str(self.bindir / "initdb"), "-D", str(self.data), "-U", _OWNER, "--auth=trust",
                            "--encoding=UTF8", "--no-sync"]),
            check=True, capture_output=True, timeout=120,
        )
        # Durability off: the cluster lives as long as the test session.
        self.proc = subprocess.Popen(
            self._as_owner([str(self.bindir / "postgres"), "-D", str(self.data), "-h", "127.0.0.1", "-p", str(self.port),
                            "-k", str(self.root), "-c", "fsync=off", "-c", "synchronous_commit=off",
                            "-c", "full_page_writes=off", "-c", "max_connections=200"]),
            stdout=open(self.log, "ab"), stderr=subprocess.STDOUT, start_new_session=True,  # noqa: SIM115
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited: {self.log.read_text()[-3000:]}")
            ready = subprocess.run([str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                                   capture_output=True, timeout=10)
            if ready.returncode == 0:
                return
            time.sleep(0.3)
        raise RuntimeError(f"postgres did not accept connections in {timeout}s: {self.log.read_text()[-3000:]}")

    def create_database(self, name: str) -> None:
        subprocess.run([str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", _OWNER, name],
                       check=True, capture_output=True, timeout=60)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # "fast" shutdown; SIGTERM's "smart" one waits for every client
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
