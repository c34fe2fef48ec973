"""The Retry button of the UI on a failed migrate-vm run, against the worker: only the failed step runs again."""

from __future__ import annotations

import json

from prefect.states import AwaitingRetry
from support.prefect_stack import (
    client,
    local_vm,
    start_deployment,
    states_by_task,
    wait_for_state,
)
from support.migrate import assert_identical
from test_flow import flaky_hyper2kvm  # noqa: F401 - the fixture: hyper2kvm that fails while a marker file exists


def test_retry_of_a_run_that_failed_at_convert_skips_export_and_download(stack, disk_server, flaky_hyper2kvm, tmp_path):  # noqa: F811
    flaky, marker = flaky_hyper2kvm
    request = local_vm(disk_server, "retry-vm", tmp_path / "out", bps=16 * 2**20)
    request.update(converter="hyper2kvm", converter_config={"binary_path": str(flaky)})

    run = start_deployment("migrate-vm/migrate-vm", {"request": request})
    first = wait_for_state(run.id, timeout=180)
    assert first.state.is_failed(), first.state.message
    assert "hyper2kvm failed" in first.state.message, first.state.message

    # The UI's Retry: the run goes back to Scheduled, named AwaitingRetry, forced; a worker picks it up.
    marker.unlink()
    with client() as c:
        c.set_flow_run_state(run.id, AwaitingRetry(), force=True)
    second = wait_for_state(run.id, timeout=180)
    assert second.state.is_completed(), second.state.message
    assert second.run_count == 2

    states = states_by_task(run.id)
    assert states["export"] == ["Completed", "Cached"], states
    assert states["download"] == ["Completed", "Cached"], states
    assert states["convert"][0] == "Failed" and states["convert"][-1] == "Completed", states
    assert_identical(disk_server.raw, "raw", tmp_path / "out" / "disk-0.qcow2")


def test_retry_of_a_run_whose_download_broke_resumes_the_download(stack, disk_server, tmp_path):
    from support.fault_server import fail_with

    request = local_vm(disk_server, "resume-vm", tmp_path / "out", bps=16 * 2**20)
    size = disk_server.raw.stat().st_size
    path = "/resume-vm.raw"
    # The first ranged read (8 MiB, one connection) arrives; then the source answers 404, a permanent error:
    # the download task fails at once and the run with it, half the disk on the worker.
    disk_server.add_fault(fail_with(404, times=None, methods=("GET",), path=path, skip=1))

    run = start_deployment("migrate-vm/migrate-vm", {"request": request})
    first = wait_for_state(run.id, timeout=180)
    assert first.state.is_failed() and "download" in states_by_task(run.id), first.state.message

    disk_server.clear_faults()
    with client() as c:
        c.set_flow_run_state(run.id, AwaitingRetry(), force=True)
    second = wait_for_state(run.id, timeout=180)
    assert second.state.is_completed(), second.state.message

    states = states_by_task(run.id)
    assert states["export"] == ["Completed", "Cached"], states
    assert states["download"][0] == "Failed" and states["download"][-1] == "Completed", states
    [disk] = json.loads((tmp_path / "out" / "migration-report.json").read_text())["disks"]
    assert 0 < disk["bytes_fetched"] <= size - 8 * 2**20, f"the retry fetched {disk['bytes_fetched']} of {size} bytes"
    assert_identical(disk_server.raw, "raw", tmp_path / "out" / "disk-0.qcow2")
