"""A 12-VM nightly plan on two workers, local and aws (moto): every VM migrated once, the tag limits held across
the workers and a server restart, and the plan summed up by the nightly run and by flows.plan_status."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from prefect.states import AwaitingRetry
from support.fleet import (
    children_of,
    local_results_block,
    most_at_once,
    result_storage,
)
from support.migrate import assert_identical
from support.moto_aws import REGION
from support.prefect_stack import (
    REPO,
    client,
    local_vm,
    start_deployment,
    task_runs_of,
    wait_for_state,
)

from flows.plan_status import plan_status
from hyperexport.samples import make_base_raw

LIMITS = {"local": 2, "aws": 3}
MiB = 2**20


@pytest.fixture(scope="module")
def fleet_config(fleet, tmp_path_factory):
    """For the module: a shared local-file-system result storage, the plan's limits, two workers running."""
    slug = local_results_block(tmp_path_factory.mktemp("shared-results"))
    with result_storage(fleet.server, slug, limits=LIMITS), fleet.worker("a"), fleet.worker("b"):
        yield fleet


def _aws_vm(moto, raw, name: str, output) -> dict:
    return {
        "provider": "aws",
        "source": {"snapshot": moto.publish(raw), "region": REGION, "poll_seconds": 0.05, "vm_name": name},
        "export": {"output_dir": str(output)},
        "converter": "qemu-img",
    }


def _wait_for_completed_children(nightly_id, at_least: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with client() as c:
            nightly = c.read_flow_run(nightly_id)
        assert nightly.state.is_completed() or not nightly.state.is_final(), nightly.state.message
        if sum(1 for run in children_of(nightly_id) if run.state and run.state.is_completed()) >= at_least:
            return
        time.sleep(1)
    raise AssertionError(f"fewer than {at_least} VMs of the plan completed in {timeout}s")


def _wait_for_children(nightly_id, count: int, timeout: float = 60) -> list:
    deadline = time.monotonic() + timeout
    while len(children := children_of(nightly_id)) < count and time.monotonic() < deadline:
        time.sleep(1)
    return children


def _summary_artifact(nightly_id) -> list[dict]:
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    with client() as c:
        [artifact] = c.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[nightly_id]), key=ArtifactFilterKey(any_=["nightly-summary"])))
    assert artifact.type == "table"
    return json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data


def _plan_status_cli(server, nightly_id) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.plan_status", str(nightly_id)], cwd=REPO, env=server.env(), check=False,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_twelve_vm_plan_on_two_workers_through_a_server_restart(fleet_config, moto, disk_server, tmp_path):
    fleet, shared = fleet_config, tmp_path / "shared"  # outputs on storage every worker reaches
    aws_raw = make_base_raw(tmp_path / "aws-disk.raw", 1024, seed=5)  # 1 GiB sparse, as an EBS volume is
    vms, sources = [], {}
    for i in range(6):
        vms.append(local_vm(disk_server, f"fleet-local-{i}", shared / f"local-{i}", bps=8 * MiB))
        sources[f"local-{i}"] = disk_server.raw
        vms.append(_aws_vm(moto, aws_raw, f"fleet-aws-{i}", shared / f"aws-{i}"))
        sources[f"aws-{i}"] = aws_raw

    # wait_hours=0: the nightly run only starts the VMs' runs, so that the retries below cannot race its summary.
    nightly = start_deployment("nightly-migrations/nightly-migrations", {"plan": {"vms": vms}, "wait_hours": 0})
    _wait_for_completed_children(nightly.id, at_least=3)
    fleet.server.stop()  # mid-plan: VMs done, running and not started yet
    fleet.server.start()
    assert wait_for_state(nightly.id, timeout=120).state.is_completed()
    finished = [wait_for_state(run.id, timeout=420) for run in _wait_for_children(nightly.id, len(vms))]
    # Prefect 3.8.8: a task that ends while the server is down fails its flow run (the client that releases the
    # concurrency slot never retries a refused connection). The operator's remedy is the dashboard's Retry.
    cut_off = [run for run in finished if not run.state.is_completed()]
    assert all("ConnectError" in (run.state.message or "") for run in cut_off), [r.state.message for r in cut_off]
    with client() as c:
        for run in cut_off:
            c.set_flow_run_state(run.id, AwaitingRetry(), force=True)
    for run in cut_off:
        assert wait_for_state(run.id, timeout=300).state.is_completed()
    print(f"runs cut off by the server restart and retried: {len(cut_off)}")

    children = children_of(nightly.id)
    names = sorted(run.parameters["request"]["source"]["vm_name"] for run in children)
    assert names == sorted(f"fleet-{name}" for name in sources), names  # one run per VM, none twice
    assert all(run.state.is_completed() for run in children), [(run.name, run.state.name) for run in children]
    for output, source in sources.items():
        assert_identical(source, "raw", shared / output / "disk-0.qcow2")
    ran = {run.id: (fleet.ran("a", run.id), fleet.ran("b", run.id)) for run in children}
    assert all(a + b == run.run_count for run, (a, b) in zip(children, ran.values(), strict=True)), ran  # once a try
    assert all(any(took[w] for took in ran.values()) for w in (0, 1)), ran  # and both workers took some

    task_runs = task_runs_of(*(run.id for run in children))
    exports = sorted(run.flow_run_id for run in task_runs if run.name.startswith("export") and run.state.name == "Completed")
    assert exports == sorted(run.id for run in children), "a VM was exported twice"  # a retry's export is Cached
    # The limits held across both workers (from the server's task run start and end times), and were reached.
    # A Cached task never started; one cut off by the restart has no end time: its state's time ends it.
    held = {tag: [(run.start_time, run.end_time or run.state.timestamp) for run in task_runs
                  if tag in run.tags and run.start_time] for tag in LIMITS}  # fmt: skip
    for tag, limit in LIMITS.items():
        assert len(held[tag]) >= 6 * 6, f"{tag}: {len(held[tag])} task runs"
        assert most_at_once(held[tag]) <= limit, f"{tag}: more than {limit} tasks at once"
    assert most_at_once(held["local"]) == LIMITS["local"]

    # The plan summed up by plan_status, in plan order, from the server alone.
    rows = plan_status(nightly.id)
    assert [row.index for row in rows] == list(range(12))
    assert [row.vm for row in rows] == [vm["source"]["vm_name"] for vm in vms]
    assert [row.output for row in rows] == [vm["export"]["output_dir"] for vm in vms]
    assert {row.state for row in rows} == {"Completed"} and not any(row.failed_step or row.message for row in rows)
    run_ids = {run.parameters["request"]["source"]["vm_name"]: run.id for run in children}
    assert all(row.duration_s > 0 and row.run_url.endswith(f"/runs/flow-run/{run_ids[row.vm]}") for row in rows)

    printed = _plan_status_cli(fleet.server, nightly.id)
    assert printed.returncode == 0, printed.stderr
    assert "12 VMs: 12 Completed" in printed.stdout and all(vm["source"]["vm_name"] in printed.stdout for vm in vms)


def test_plan_status_names_the_failed_step_and_its_message(fleet_config, disk_server, tmp_path):
    good = local_vm(disk_server, "fleet-good", tmp_path / "good", bps=16 * MiB)
    missing = local_vm(disk_server, "fleet-missing", tmp_path / "missing")
    missing["source"]["source"] = disk_server.url("/no-such-disk.raw")
    nightly = start_deployment("nightly-migrations/nightly-migrations", {"plan": {"vms": [good, missing]}})
    nightly = wait_for_state(nightly.id, timeout=240)
    assert nightly.state.is_failed() and "2 VMs: 1 Completed, 1 Failed" in nightly.state.message, nightly.state.message

    good_row, missing_row = plan_status(nightly.id)
    assert (good_row.vm, good_row.state, good_row.failed_step, good_row.message) == ("fleet-good", "Completed", "", "")
    assert (missing_row.vm, missing_row.state, missing_row.failed_step) == ("fleet-missing", "Failed", "download")
    [missing_run] = [run for run in children_of(nightly.id) if run.name == missing_row.run_name]
    assert missing_row.message and missing_row.message == missing_run.state.message[:300]
    table = _summary_artifact(nightly.id)  # the nightly run waited for both VMs, then summed the plan up
    assert [(r["vm"], r["state"], r["failed_step"], r["message"], r["output"], r["run_url"]) for r in table] == [
        (row.vm, row.state, row.failed_step, row.message, row.output, row.run_url) for row in (good_row, missing_row)]

    printed = _plan_status_cli(fleet_config.server, nightly.id)
    assert printed.returncode == 3 and "fleet-missing" in printed.stdout and "download" in printed.stdout, printed
