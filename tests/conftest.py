"""Session-wide test set-up: Prefect settings, one real `prefect server` per session, sample images."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="hyperexport-tests-"))
_SESSION_HOME.chmod(0o711)  # the PostgreSQL cluster under it runs as the postgres user, which must reach it
# Before anything imports prefect: an isolated home, no analytics. (The flow heartbeat cannot be
# switched off through the environment; the prefect_server fixture turns it off in-process.)
os.environ["PREFECT_HOME"] = str(_SESSION_HOME / "prefect-home")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_LOGGING_LEVEL"] = "INFO"
os.environ["PREFECT_SERVER_LOGGING_LEVEL"] = "WARNING"
os.environ["PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"] = "false"
os.environ.pop("PREFECT_API_URL", None)
os.environ["HYPEREXPORT_RETRY_BACKOFF_SECONDS"] = "0.2"

sys.path.insert(0, str(Path(__file__).parent))

from hyperexport.samples import make_base_raw  # noqa: E402
from support.fault_server import FaultServer  # noqa: E402
from support.postgres import PostgresCluster  # noqa: E402
from support.procwatch import descendants  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrefectServer:
    """A real `prefect server start` process on 127.0.0.1, restartable (same database)."""

    def __init__(self, home: Path, database_url: str | None = None) -> None:
        self.home = home
        self.database_url = database_url  # None: Prefect's default, SQLite under home
        self.port = _free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.proc: subprocess.Popen | None = None
        self.log = home / "server.log"

    def env(self) -> dict[str, str]:
        return {**os.environ, "PREFECT_API_URL": self.api_url, "PREFECT_HOME": str(self.home)}

    # What docs/orchestration.md asks of a real server: leases on disk, so that a restart frees no slot twice and
    # leaks none (the default keeps them in memory).
    SERVER_SETTINGS: ClassVar[dict[str, str]] = {
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect.server.concurrency.lease_storage.filesystem",
    }

    def start(self, timeout: float = 90.0) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**self.env(), **self.SERVER_SETTINGS}
        env.pop("PREFECT_API_URL")
        if self.database_url:
            env["PREFECT_API_DATABASE_CONNECTION_URL"] = self.database_url
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(self.port), "--analytics-off"],
            env=env, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT, start_new_session=True,  # noqa: SIM115
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prefect server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"prefect server did not become healthy in {timeout}s: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def prefect_server():
    """One server per session, on PostgreSQL; tests talk to it through PREFECT_API_URL."""
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    database = PostgresCluster(_SESSION_HOME / "postgres", _free_port())
    database.start()
    database.create_database("prefect")
    server = PrefectServer(_SESSION_HOME / "server-home", database.url("prefect"))
    try:
        server.start()
    except BaseException:
        database.stop()
        raise
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield server
    finally:
        from prefect.logging.handlers import APILogHandler

        APILogHandler().flush()  # before the server goes, or the log worker retries against nothing
        os.environ.pop("PREFECT_API_URL", None)
        server.stop()
        database.stop()


@pytest.fixture(scope="session")
def base_raw(tmp_path_factory) -> Path:
    return make_base_raw(tmp_path_factory.mktemp("base") / "base.raw", 64)


@pytest.fixture(scope="session")
def second_raw(tmp_path_factory) -> Path:
    return make_base_raw(tmp_path_factory.mktemp("base2") / "data.raw", 32, seed=7)


@pytest.fixture
def http_server():
    with FaultServer() as server:
        yield server


# One bootstrapped server and one process worker, as users run them (tests/orchestration, tests/aws).
# The session's `prefect server start` process is set up with the real bootstrap command
# (python -m deployments.bootstrap); a real `prefect worker start` process then runs the deployments'
# flow runs as its own subprocesses, which get their heartbeat setting from the deployment.
@pytest.fixture(scope="session")
def stack(prefect_server, tmp_path_factory):
    """The server, bootstrapped (local limit 2), and a running worker."""
    from support.prefect_stack import LOCAL_LIMIT, Stack, Worker, run_bootstrap

    proc = run_bootstrap(prefect_server, "--limit", f"local={LOCAL_LIMIT}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    worker = Worker(prefect_server, tmp_path_factory.mktemp("worker-home"))
    worker.start()
    try:
        yield Stack(prefect_server, worker, proc.stdout)
    finally:
        worker.stop()


@pytest.fixture(scope="session")
def disk_server(tmp_path_factory):
    """Small real disks over HTTP, so that a bandwidth cap makes downloads last (the work is real, not a sleep)."""
    raw = make_base_raw(tmp_path_factory.mktemp("served") / "base.raw", 16)
    with FaultServer() as server:
        server.raw = raw
        yield server




# Process names a migration may start. A test that leaves one of them running (a converter past its timeout,
# a cancelled run's qemu-img, the libguestfs appliance's qemu-system) fails: no process outlives its test.
_WATCHED = ("qemu-img", "qemu-system", "qemu-nbd", "qemu-storage-daemon", "hyper2kvm", "guestfsd", "passt")


def _become_subreaper() -> None:
    """Orphans (a qemu-system whose hyper2kvm parent was killed) are re-parented to this process, not to init,
    so the check below still sees them."""
    import ctypes

    PR_SET_CHILD_SUBREAPER = 36
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


_become_subreaper()


@pytest.fixture(autouse=True)
def no_leftover_processes(request):
    """Fail the test that leaves a converter, qemu or appliance process running, and end it."""
    from hyperexport import cancel, procs

    yield
    cancel.reset()  # a test that cancelled a run must not cancel the next one in this process
    deadline = time.monotonic() + 5
    left = descendants(_WATCHED)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = descendants(_WATCHED)
    if left:
        procs.terminate_all(grace_s=0.5)
        for pid in left:
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        pytest.fail(f"processes outlived the test: {left}")
