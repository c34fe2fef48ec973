"""What the orchestration tests drive: a real process worker, the bootstrap command, and the server's view of runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

REPO = Path(__file__).resolve().parents[2]
POOL = "hyperexport"
LOCAL_LIMIT = 2
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


class Worker:
    """``prefect worker start --pool hyperexport --type process`` in its own process group (killable whole)."""

    def __init__(self, server, home: Path, name: str = "test-worker", extra_env: dict[str, str] | None = None,
                 limit: int | None = None) -> None:  # fmt: skip
        self.server = server
        self.home = home
        self.name = name
        self.extra_env = extra_env or {}  # reaches the worker's flow runs too
        self.limit = limit  # prefect worker start --limit: flow runs at once
        self.proc: subprocess.Popen | None = None
        self.log = home / "worker.log"

    def env(self) -> dict[str, str]:
        return {
            **self.server.env(),
            "PREFECT_HOME": str(self.home),  # its own result storage, as on another host
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "HYPEREXPORT_RETRY_BACKOFF_SECONDS": "0.2",
            **self.extra_env,
        }

    def start(self, timeout: float = 60) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--type", "process", "--name", self.name,
             *(["--limit", str(self.limit)] if self.limit else [])],
            env=self.env(), cwd=self.home, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT, start_new_session=True,  # noqa: SIM115
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log.read_text()[-3000:]}")
            if "started!" in self.log.read_text():
                return
            time.sleep(0.3)
        raise RuntimeError(f"worker did not start in {timeout}s: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the worker and everything in its process group: a crashed worker host."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Stack:
    server: object
    worker: Worker
    bootstrap_output: str


def run_bootstrap(server, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deployments.bootstrap", *args],
        cwd=REPO, env=server.env(), capture_output=True, text=True, timeout=180, check=False,
    )


def local_vm(disk_server, name: str, output: Path, *, bps: int = 4 * 2**20, **extra) -> dict:
    """A migrate-vm request (JSON) for a raw disk served over HTTP, converted by qemu-img."""
    url = disk_server.add_file(f"/{name}.raw", disk_server.raw)
    return {
        "provider": "local",
        "source": {"source": url, "vm_name": name},
        "export": {"output_dir": str(output), "bandwidth_limit_bps": bps, "connections": 1},
        "converter": "qemu-img",
        **extra,
    }


def client():
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def wait_for_state(flow_run_id: UUID, types=FINAL, timeout: float = 180, name: str | None = None):
    """The flow run once its state type is one of ``types`` (and its name is ``name``, if given)."""
    deadline = time.monotonic() + timeout
    with client() as c:
        while True:
            run = c.read_flow_run(flow_run_id)
            if run.state and run.state.type.value in types and (name is None or run.state.name == name):
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"flow run {run.name} still {run.state.type.value if run.state else None} "
                                     f"({run.state.name if run.state else ''}) after {timeout}s")
            time.sleep(1)


def task_runs_of(*flow_run_ids: UUID) -> list:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with client() as c:
        return c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(flow_run_ids))), limit=200)


def states_by_task(flow_run_id: UUID) -> dict[str, list[str]]:
    from prefect.client.schemas.sorting import TaskRunSort  # noqa: F401 - sorted below by time

    grouped: dict[str, list] = {}
    for run in sorted(task_runs_of(flow_run_id), key=lambda r: r.expected_start_time or r.created):
        grouped.setdefault(run.name.rsplit("-", 1)[0], []).append(run.state.name)
    return grouped


def slots_in_use(tag: str) -> tuple[int, list]:
    """The server's count of occupied slots of ``tag``'s limit, and the task runs that hold leases on them.

    The count lives in the database, the leases in the lease storage: a lease lost in a server restart
    would leave the count up for good, a leak that only the count shows.
    """
    with client() as c:
        count = c.read_global_concurrency_limit_by_name(f"tag:{tag}").active_slots
        holders = c.read_concurrency_limit_by_tag(tag).active_slots
    return count, holders


def wait_for_free_slots(tag: str, timeout: float) -> float:
    """Seconds until no slot of ``tag``'s limit is occupied (fails after ``timeout``)."""
    started = time.monotonic()
    while True:
        count, holders = slots_in_use(tag)
        if count == 0 and not holders:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{count} slot(s) of tag {tag!r} still occupied after {timeout}s (leases: {holders})")
        time.sleep(1)


def start_deployment(name: str, parameters: dict | None = None, job_variables: dict | None = None):
    from prefect.deployments import run_deployment

    return run_deployment(name, parameters=parameters or {}, job_variables=job_variables, timeout=0)
