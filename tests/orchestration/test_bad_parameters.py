"""Bad parameters are refused with a clear message before any work starts."""

from __future__ import annotations

import pytest
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId
from prefect.exceptions import PrefectHTTPStatusError
from prefect.variables import Variable
from support.migrate import accepted_providers
from support.prefect_stack import (
    client,
    local_vm,
    start_deployment,
    task_runs_of,
    wait_for_state,
)

from hyperexport.models import ProviderName


def test_unknown_provider_is_refused_by_the_server(stack, tmp_path):
    request = {"provider": "openstack", "source": {"source": "/vm.ova"}, "export": {"output_dir": str(tmp_path)}}
    with client() as c:
        before = len(c.read_flow_runs(limit=200))
    with pytest.raises(PrefectHTTPStatusError) as refused:
        start_deployment("migrate-vm/migrate-vm", {"request": request})
    assert f"'openstack' is not one of {[p.value for p in ProviderName]}" in str(refused.value)
    with client() as c:
        assert len(c.read_flow_runs(limit=200)) == before, "no flow run may be created"


@pytest.mark.parametrize(("export", "message"), [
    ({"connections": 0}, "field 'request.export.connections'. Failure reason: 0 is less than the minimum of 1"),
    ({}, "field 'request.export'. Failure reason: 'output_dir' is a required property"),
])
def test_a_bad_shared_field_is_refused_by_the_server_naming_the_field(stack, tmp_path, export, message):
    """Fields every provider's form shares (where the disks go, ...) are checked once, so the refusal names the
    field instead of "not valid under any of the given schemas"."""
    request = {"provider": "aws", "source": {"snapshot": "snap-0123456789abcdef0", "region": "us-east-1"},
               "export": {"output_dir": str(tmp_path), **export} if export else {}}
    with pytest.raises(PrefectHTTPStatusError) as refused:
        start_deployment("migrate-vm/migrate-vm", {"request": request})
    assert message in str(refused.value)


def test_bad_requests_and_plans_fail_before_any_task_or_child_run(stack, disk_server, tmp_path):
    missing_block = local_vm(disk_server, "blocked", tmp_path / "blocked")
    missing_block.update(provider="aws", source={"snapshot": "snap-0123456789abcdef0", "region": "us-east-1"},
                         credentials_block="no-such-block")
    Variable.set("test-empty-plan", {"vms": []}, overwrite=True)
    bad_plan = tmp_path / "plan.yaml"
    bad_plan.write_text(
        "vms:\n"
        f"  - {{provider: local, source: {{source: {tmp_path / 'there.vmdk'}}}, export: {{output_dir: {tmp_path / 'a'}}}}}\n"
        f"  - {{provider: gcp, credentials_block: nope, source: {{}}, export: {{output_dir: {tmp_path / 'b'}}}}}\n"
        f"  - {{provider: openstack, source: {{}}, export: {{output_dir: {tmp_path / 'c'}}}}}\n"
    )
    bad_entries = tmp_path / "entries.yaml"
    bad_entries.write_text(
        "vms:\n"
        f"  - {{provider: local, source: {{source: {tmp_path / 'missing.vmdk'}}}, export: {{output_dir: {tmp_path / 'a'}}}}}\n"
        f"  - {{provider: local, source: {{source: {disk_server.raw}}}, credentials_block: some-block, export: {{output_dir: {tmp_path / 'b'}}}}}\n"
    )
    bad_region = {"provider": "aws", "source": {"instance": "i-0123456789abcdef0", "region": "moon-1"},
                  "export": {"output_dir": str(tmp_path / "region")}, "converter": "qemu-img"}
    cases = {
        # The user filled the form's fields, not command-line flags: the message names the field.
        "bad region": (start_deployment("migrate-vm/migrate-vm", {"request": bad_region}),
                       "'moon-1' is not an AWS region name; use one like us-east-1 (request field source.region)"),
        "missing block": (start_deployment("migrate-vm/migrate-vm", {"request": missing_block}),
                          "credentials block 'no-such-block' does not exist for provider aws"),
        "empty plan": (start_deployment("nightly-migrations/nightly-migrations", {"plan_variable": "test-empty-plan"}),
                       "the migration plan in Prefect variable 'test-empty-plan' lists no VMs"),
        "unknown provider in plan": (start_deployment("nightly-migrations/nightly-migrations", {"plan_file": str(bad_plan)}),
                                     "vms.2.provider: Input should be " + accepted_providers()),
        "bad plan entries": (start_deployment("nightly-migrations/nightly-migrations", {"plan_file": str(bad_entries)}),
                             "no VM was started: vms[0] (local missing.vmdk): source"),
        "missing variable": (start_deployment("nightly-migrations/nightly-migrations", {"plan_variable": "no-such-plan"}),
                             "Prefect variable 'no-such-plan' does not exist"),
    }
    for what, (run, message) in cases.items():
        run = wait_for_state(run.id, timeout=120)
        assert run.state.is_failed(), f"{what}: {run.state.type}"
        assert message in run.state.message, f"{what}: {run.state.message}"
        assert task_runs_of(run.id) == [], f"{what}: a task ran before the refusal"
        with client() as c:
            children = c.read_flow_runs(flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run.id])))
        assert children == [], f"{what}: a migration started"
    with client() as c:
        assert " --" not in c.read_flow_run(cases["bad region"][0].id).state.message
    entries = cases["bad plan entries"][0]
    with client() as c:
        message = c.read_flow_run(entries.id).state.message
    assert "missing.vmdk does not exist" in message and "vms[1] (local base.raw): provider 'local' takes no credentials block" in message
