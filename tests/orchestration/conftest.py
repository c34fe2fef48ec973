"""One bootstrapped server and one process worker for the orchestration tests, as users run them.

The session's ``prefect server start`` process (tests/conftest.py) is set up
with the real bootstrap command (``python -m deployments.bootstrap``); a real
``prefect worker start`` process then runs the deployments' flow runs as its
own subprocesses. Flow-run subprocesses get their heartbeat setting from the
deployment, as in production.
"""

from __future__ import annotations

import pytest
from prefect_stack import LOCAL_LIMIT, Stack, Worker, run_bootstrap
from support.fault_server import FaultServer

from hyperexport.samples import make_base_raw


@pytest.fixture(scope="session")
def stack(prefect_server, tmp_path_factory):
    """The server, bootstrapped (local limit 2), and a running worker."""
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


