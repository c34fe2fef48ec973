"""The aws provider through the migrate-vm flow (real Prefect server) and the hyperexport command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support.migrate import assert_identical, assert_streamed, sha256


def _progress_artifacts(flow_run_id) -> dict[str, float]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {a.key: a.data for a in artifacts if a.type == "progress"}


def test_flow_with_a_credentials_block_has_progress_per_disk(prefect_server, aws, web01, root_raw, data_raw,
                                                             make_request, tmp_path):  # fmt: skip
    from prefect_aws import AwsCredentials

    from flows.migrate_vm import migrate_vm

    AwsCredentials(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1").save(
        "moto-test", overwrite=True
    )
    before = aws.inventory()
    request = make_request(tmp_path / "out", instance=web01.instance_id).model_copy(update={"credentials_block": "moto-test"})

    state = migrate_vm(request, return_state=True)

    report = state.result()
    assert report.success
    for raw, output in zip([root_raw, data_raw], report.conversion.converted_files):
        assert_identical(raw, "raw", output)
    progress = _progress_artifacts(state.state_details.flow_run_id)
    assert progress == {"download-web01-disk-0": 100.0, "download-web01-disk-1": 100.0}
    assert aws.inventory() == before


def test_command_line_migrates_an_instance(prefect_server, aws, web01, root_raw, data_raw, tmp_path):
    aws.snapshot_delay = 0  # the command polls every 15 s; let the snapshots be complete at once
    before = aws.inventory()
    command = [str(Path(sys.executable).with_name("hyperexport")), "--provider", "aws", "--instance", web01.instance_id,
               "--region", "us-east-1", "--output", str(tmp_path / "out"), "--convert"]  # fmt: skip

    done = subprocess.run(command, env=prefect_server.env(), capture_output=True, text=True, timeout=300, check=False)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    outputs = sorted((tmp_path / "out").glob("*.qcow2"))
    assert [p.name for p in outputs] == ["disk-0.qcow2", "disk-1.qcow2"]
    for raw, output in zip([root_raw, data_raw], outputs):
        assert_identical(raw, "raw", output)
    report = json.loads((tmp_path / "out" / "migration-report.json").read_text())
    assert report["provider"] == "aws" and report["export_method"] == "ebs-direct"
    assert aws.inventory() == before


def test_command_line_streams_an_instance_into_its_outputs(prefect_server, aws, web01, root_raw, data_raw, tmp_path):
    """--stream: each snapshot's blocks go straight into its qcow2 as they arrive, no staged copy, no convert."""
    aws.snapshot_delay = 0
    before = aws.inventory()
    out = tmp_path / "out"
    command = [str(Path(sys.executable).with_name("hyperexport")), "--provider", "aws", "--instance", web01.instance_id,
               "--region", "us-east-1", "--output", str(out), "--convert", "--converter", "qemu-img", "--stream",
               "--no-progress"]  # fmt: skip

    done = subprocess.run(command, env=prefect_server.env(), capture_output=True, text=True, timeout=300, check=False)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = assert_streamed(out, [root_raw, data_raw])
    assert report["export_method"] == "ebs-direct"
    for n, (raw, disk) in enumerate(zip([root_raw, data_raw], report["disks"])):
        assert disk["sha256"] == f"sha256:{sha256(raw)}"
        # only the snapshot's blocks were written: the output holds the source's data plus qcow2 metadata
        output = out / f"disk-{n}.qcow2"
        assert output.stat().st_blocks * 512 <= raw.stat().st_blocks * 512 + 4 * 2**20, output
    assert aws.inventory() == before
