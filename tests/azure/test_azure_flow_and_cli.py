"""The azure provider through the hyperexport command and the migrate-vm deployment on a real worker, with
the service principal in a credentials block; the client secret is scanned out of everything they leave."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support.azure_arm import CLIENT_SECRET, RG
from support.migrate import assert_identical, assert_streamed
from support.prefect_stack import client, start_deployment, wait_for_state

from hyperexport.report import MigrationReport


def _save_block(arm, name: str) -> None:
    from blocks.azure import AzureServicePrincipal

    login = arm.login()
    AzureServicePrincipal(
        tenant_id=login.tenant_id, client_id=login.client_id, client_secret=CLIENT_SECRET, subscription_id=login.subscription_id,
        authority_host=login.authority_host, resource_manager_endpoint=login.resource_manager_endpoint, ca_bundle=login.ca_bundle,
    ).save(name, overwrite=True)


def _no_secret_in(directory: Path, *texts: str) -> None:
    for text in texts:
        assert CLIENT_SECRET not in text
    for path in directory.rglob("*"):
        if path.is_file() and path.stat().st_size < 2**20:
            assert CLIENT_SECRET.encode() not in path.read_bytes(), path


def test_command_line_migrates_a_vm(prefect_server, arm, web01, os_raw, data_raw, tmp_path):
    _save_block(arm, "azure-cli-test")
    out = tmp_path / "out"
    command = [str(Path(sys.executable).with_name("hyperexport")), "--provider", "azure", "--vm", "web01", "--resource-group", RG,
               "--credentials-block", "azure-cli-test", "--output", str(out), "--convert", "--opt", "poll_seconds=0.02"]  # fmt: skip

    done = subprocess.run(command, env=prefect_server.env(), capture_output=True, text=True, timeout=300, check=False)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    outputs = sorted(out.glob("*.qcow2"))
    assert [p.name for p in outputs] == ["disk-0.qcow2", "disk-1.qcow2"]
    assert_identical(os_raw, "raw", outputs[0])
    assert_identical(data_raw, "raw", outputs[1])
    report = json.loads((out / "migration-report.json").read_text())
    assert report["provider"] == "azure" and report["export_method"] == "snapshot-sas"
    assert arm.snapshot_ids() == set() and arm.open_grants() == set()
    _no_secret_in(out, done.stdout, done.stderr)


def test_command_line_streams_a_vm_into_its_outputs(prefect_server, arm, web01, os_raw, data_raw, tmp_path):
    """--stream: the data of each managed disk's fixed VHD (its page ranges, the footer left out) goes straight
    into the qcow2 as it downloads: no staged copy, no convert pass."""
    _save_block(arm, "azure-cli-test")
    out = tmp_path / "out"
    command = [str(Path(sys.executable).with_name("hyperexport")), "--provider", "azure", "--vm", "web01", "--resource-group", RG,
               "--credentials-block", "azure-cli-test", "--output", str(out), "--convert", "--opt", "poll_seconds=0.02",
               "--converter", "qemu-img", "--stream", "--no-progress"]  # fmt: skip

    done = subprocess.run(command, env=prefect_server.env(), capture_output=True, text=True, timeout=300, check=False)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert_streamed(out, [os_raw, data_raw])
    assert arm.snapshot_ids() == set() and arm.open_grants() == set()
    _no_secret_in(out, done.stdout, done.stderr)


def test_deployment_migrates_a_vm_with_progress_per_disk(stack, arm, web01, os_raw, data_raw, make_request, tmp_path):
    _save_block(arm, "azure-deploy-test")
    request = make_request(tmp_path / "out", vm="web01").model_copy(update={"credentials_block": "azure-deploy-test"})
    run = start_deployment("migrate-vm/migrate-vm", {"request": request.model_dump(mode="json")})
    final = wait_for_state(run.id, timeout=300)
    assert final.state.is_completed(), final.state.message

    outputs = sorted((tmp_path / "out").glob("disk-*.qcow2"))
    assert [p.name for p in outputs] == ["disk-0.qcow2", "disk-1.qcow2"]
    assert_identical(os_raw, "raw", outputs[0])  # OS disk first
    assert_identical(data_raw, "raw", outputs[1])
    report = MigrationReport.model_validate_json((tmp_path / "out" / "migration-report.json").read_text())
    assert report.provider == "azure" and report.validation.passed
    assert arm.snapshot_ids() == set() and arm.open_grants() == set()

    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import ArtifactSort

    with client() as c:
        artifacts = c.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])),
            sort=ArtifactSort.CREATED_DESC, limit=50,
        )
        logs = c.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])), limit=200)
    latest = {}
    for artifact in artifacts:
        if artifact.type == "progress":
            latest.setdefault(artifact.key, artifact)
    assert sorted(latest) == ["download-web01-disk-0", "download-web01-disk-1"], sorted(latest)
    assert all(artifact.data == 100.0 for artifact in latest.values())
    _no_secret_in(tmp_path / "out", *(log.message for log in logs), *(json.dumps(a.data, default=str) for a in artifacts),
                  final.state.message or "")
