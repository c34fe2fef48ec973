"""A server restarted mid-run leaks no concurrency slot; a killed worker's run is Crashed and its slot freed."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from support.prefect_stack import (
    local_vm,
    slots_in_use,
    start_deployment,
    task_runs_of,
    wait_for_free_slots,
    wait_for_state,
)


def _wait_for_running_download(flow_run_id, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [r for r in task_runs_of(flow_run_id) if r.name.startswith("download") and r.state and r.state.is_running()]
        if runs and slots_in_use("local")[0] >= 1:
            return
        time.sleep(0.5)
    raise AssertionError(f"the download of flow run {flow_run_id} did not start in {timeout}s")


def _processes_of(flow_run_id) -> list[int]:
    """Pids of the processes running ``flow_run_id`` (their environment names it)."""
    wanted = f"PREFECT__FLOW_RUN_ID={flow_run_id}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if wanted in (entry / "environ").read_bytes().split(b"\0"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def test_server_restart_mid_run_leaks_no_slot(stack, disk_server, tmp_path):
    run = start_deployment("migrate-vm/migrate-vm", {"request": local_vm(disk_server, "restart-vm", tmp_path / "out", bps=2**20)})
    _wait_for_running_download(run.id)
    stack.server.stop()
    stack.server.start()  # same port, same database, same lease files
    finished = wait_for_state(run.id, timeout=180)
    assert finished.state.is_completed(), finished.state.message
    wait_for_free_slots("local", timeout=30)


def test_killed_worker_run_is_crashed_within_two_minutes_and_its_slot_freed(stack, disk_server, tmp_path):
    run = start_deployment("migrate-vm/migrate-vm", {"request": local_vm(disk_server, "doomed-vm", tmp_path / "out", bps=64 * 2**10)})
    _wait_for_running_download(run.id)
    # The worker's host dies: the worker and the flow run's process (its own session) go at once.
    pids = _processes_of(run.id)
    assert pids, "the flow run's process was not found"
    stack.worker.kill()
    for pid in pids:
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    killed = time.monotonic()
    stack.worker.start()  # a fresh worker for the pool; it does not revive the dead run

    crashed = wait_for_state(run.id, types=("CRASHED", "COMPLETED", "FAILED"), timeout=150)
    crashed_after = time.monotonic() - killed
    assert crashed.state.is_crashed(), crashed.state
    assert "no heartbeat" in crashed.state.message
    assert crashed_after < 120, f"Crashed only {crashed_after:.0f}s after the kill"
    wait_for_free_slots("local", timeout=max(1, 120 - (time.monotonic() - killed)))
