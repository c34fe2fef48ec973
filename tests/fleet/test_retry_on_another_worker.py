"""A run that failed at convert on worker A, retried from the dashboard, finishes on worker B from A's results."""

from __future__ import annotations

import uuid

import pytest
from prefect.states import AwaitingRetry
from support.fleet import local_results_block, result_storage, s3_keys, s3_results_block
from support.migrate import assert_identical
from support.prefect_stack import (
    client,
    local_vm,
    start_deployment,
    states_by_task,
    wait_for_state,
)
from test_flow import flaky_hyper2kvm  # noqa: F401 - the fixture: hyper2kvm that fails while a marker file exists

MiB = 2**20


@pytest.mark.parametrize("storage", ["local-file-system", "s3-bucket"])
def test_retry_lands_on_another_worker_and_reads_the_first_workers_results(
    fleet, moto, disk_server, flaky_hyper2kvm, tmp_path, storage  # noqa: F811
):
    flaky, marker = flaky_hyper2kvm
    shared = tmp_path / "shared"  # an NFS mount on every host, in production
    bucket = f"fleet-results-{uuid.uuid4().hex[:8]}"
    slug = local_results_block(shared / "results") if storage == "local-file-system" else s3_results_block(moto, bucket)
    request = local_vm(disk_server, f"retry-{storage}", shared / "out", bps=16 * MiB)
    request.update(converter="hyper2kvm", converter_config={"binary_path": str(flaky)})
    a, b = f"a-{storage}", f"b-{storage}"

    with result_storage(fleet.server, slug) as said:
        assert f"default result storage of every run: {slug}" in said
        with fleet.worker(a):
            run = start_deployment("migrate-vm/migrate-vm", {"request": request})
            first = wait_for_state(run.id, timeout=180)
        assert first.state.is_failed() and "hyper2kvm failed" in first.state.message, first.state.message
        assert fleet.ran(a, run.id) == 1
        # The results went to the shared storage, none to A's own PREFECT_HOME; then A's host goes away.
        if storage == "local-file-system":
            assert any(p.is_file() for p in (shared / "results").rglob("*"))
        else:
            assert s3_keys(moto, bucket)
        assert not [p for p in (fleet.home(a) / "storage").rglob("*") if p.is_file()]
        fleet.take_away_home(a)

        # The UI's Retry (AwaitingRetry, forced), with only worker B left to pick it up.
        marker.unlink()
        with fleet.worker(b):
            with client() as c:
                c.set_flow_run_state(run.id, AwaitingRetry(), force=True)
            second = wait_for_state(run.id, timeout=240)
        assert second.state.is_completed(), second.state.message
    assert second.run_count == 2 and fleet.ran(b, run.id) == 1

    states = states_by_task(run.id)
    assert states["export"] == ["Completed", "Cached"], states
    assert states["download"] == ["Completed", "Cached"], states
    assert states["convert"][0] == "Failed" and states["convert"][-1] == "Completed", states
    assert_identical(disk_server.raw, "raw", shared / "out" / "disk-0.qcow2")
