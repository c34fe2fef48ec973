"""Deployments as bootstrapped, and a nightly run: one migrate-vm run per VM, capped by the provider's tag limit."""

from __future__ import annotations

from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.variables import Variable
from support.prefect_stack import (
    LOCAL_LIMIT,
    POOL,
    client,
    local_vm,
    run_bootstrap,
    start_deployment,
    task_runs_of,
    wait_for_free_slots,
    wait_for_state,
)
from support.migrate import assert_identical

from hyperexport.models import ProviderName

from deployments.bootstrap import ZOMBIE_AUTOMATION, recommended_limits


def test_bootstrap_sets_up_pool_limits_blocks_automation_and_deployments(stack):
    with client() as c:
        nightly = c.read_deployment_by_name("nightly-migrations/nightly-migrations")
        migrate = c.read_deployment_by_name("migrate-vm/migrate-vm")
        pool = c.read_work_pool(POOL)
        automations = c.read_automations_by_name(ZOMBIE_AUTOMATION)
        limits = {tag: c.read_concurrency_limit_by_tag(tag).concurrency_limit for tag in recommended_limits()}
        block_types = {t.slug for t in c.read_block_types()}

    [schedule] = nightly.schedules
    assert schedule.active and schedule.schedule.cron == "0 1 * * *" and schedule.schedule.timezone == "UTC"
    assert nightly.work_pool_name == migrate.work_pool_name == POOL and pool.type == "process"
    for deployment in (nightly, migrate):
        assert deployment.job_variables["env"]["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == "30"
        assert deployment.enforce_parameter_schema
    # The UI draws a form from the schema: the request is a model with its fields, not a bare JSON box.
    request_schema = migrate.parameter_openapi_schema["properties"]["request"]
    assert request_schema["properties"]["provider"]["enum"] == [p.value for p in ProviderName]
    assert {"source", "export", "credentials_block", "convert_options"} <= set(request_schema["properties"])
    assert "plan" in nightly.parameter_openapi_schema["properties"]

    assert limits == {**recommended_limits(), "local": LOCAL_LIMIT}
    assert len(automations) == 1 and automations[0].enabled
    assert automations[0].trigger.within.total_seconds() == 90
    assert {
        "hyperexport-aws-credentials", "aws-credentials", "hyperexport-azure-service-principal",
        "hyperexport-gcp-service-account", "hyperexport-vsphere-credentials", "hyperexport-hyper-v-credentials",
        "hyperexport-migration-plan",
    } <= block_types

    # Again, with nothing to deploy: every step finds its object and keeps it (the local limit too).
    again = run_bootstrap(stack.server, "--no-deploy")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"work pool {POOL!r} exists" in again.stdout and "exists (no heartbeat for 90s" in again.stdout
    assert f"local={LOCAL_LIMIT}" in again.stdout
    with client() as c:
        assert len(c.read_automations_by_name(ZOMBIE_AUTOMATION)) == 1
        assert c.read_concurrency_limit_by_tag("local").concurrency_limit == LOCAL_LIMIT


def _overlap(intervals: list[tuple]) -> int:
    """Most intervals open at one instant (an end at the same instant as a start closes first)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals], key=lambda e: (e[0], e[1]))
    most = current = 0
    for _, step in events:
        current += step
        most = max(most, current)
    return most


def test_nightly_run_starts_one_migrate_vm_run_per_vm_capped_by_the_tag_limit(stack, disk_server, tmp_path):
    plan = {"vms": [local_vm(disk_server, f"vm-{i}", tmp_path / f"vm-{i}") for i in range(6)]}
    Variable.set("test-nightly-plan", plan, overwrite=True)

    nightly = start_deployment("nightly-migrations/nightly-migrations", {"plan_variable": "test-nightly-plan"})
    nightly = wait_for_state(nightly.id, timeout=420)  # it waits for its VMs (wait_hours), then sums the plan up
    assert nightly.state.is_completed(), nightly.state.message

    with client() as c:
        children = c.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[nightly.id])), limit=50
        )
        migrate_vm = c.read_deployment_by_name("migrate-vm/migrate-vm")
    assert len(children) == 6 and {run.deployment_id for run in children} == {migrate_vm.id}
    assert sorted(run.parameters["request"]["source"]["vm_name"] for run in children) == [f"vm-{i}" for i in range(6)]

    finished = [wait_for_state(run.id, timeout=300) for run in children]
    assert all(run.state.is_completed() for run in finished), [(r.name, r.state.message) for r in finished]
    for i in range(6):
        assert_identical(disk_server.raw, "raw", tmp_path / f"vm-{i}" / "disk-0.qcow2")

    tagged = [run for run in task_runs_of(*(run.id for run in children)) if "local" in run.tags]
    assert len(tagged) >= 6 * 6  # export, download, cleanup, manifest, detect, convert, validate per VM
    intervals = [(run.start_time, run.end_time) for run in tagged]
    assert all(start and end for start, end in intervals)
    # Never more than the limit at once; and as many as the limit, or the cap proved nothing.
    assert _overlap(intervals) == LOCAL_LIMIT
    wait_for_free_slots("local", timeout=30)

    # Every task input hashed (names and models, no clients): else Prefect silently persists nothing, and a
    # retry from the dashboard would run every step again.
    with client() as c:
        logs = c.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id for run in children])), limit=200)
    assert logs and not [log.message for log in logs if "computing cache key" in log.message]
