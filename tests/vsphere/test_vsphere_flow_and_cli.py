"""The vsphere provider through the hyperexport command and the migrate-vm deployment on a real worker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support.vsphere_inventory import snapshot_names
from secrets_scan import assert_password_never_shown, run_texts
from support.migrate import assert_identical


def test_command_line_migrates_a_running_vm(prefect_server, credentials_block, web01, root_raw, data_raw, tmp_path):
    command = [str(Path(sys.executable).with_name("hyperexport")), "--provider", "vsphere", "--vm", web01.name,
               "--datacenter", "DC0", "--export-method", "datastore", "--credentials-block", credentials_block,
               "--output", str(tmp_path / "out"), "--convert"]  # fmt: skip

    done = subprocess.run(command, env=prefect_server.env(), capture_output=True, text=True, timeout=300, check=False)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    outputs = sorted((tmp_path / "out").glob("*.qcow2"))
    assert [p.name for p in outputs] == ["disk-0.qcow2", "disk-1.qcow2"]
    assert_identical(root_raw, "raw", outputs[0])
    assert_identical(data_raw, "raw", outputs[1])
    report = json.loads((tmp_path / "out" / "migration-report.json").read_text())
    assert report["provider"] == "vsphere" and report["export_method"] == "datastore"
    assert snapshot_names(web01) == []
    assert_password_never_shown(run_texts(None, tmp_path / "out", done.stdout, done.stderr))


def test_deployment_migrates_a_vm_with_progress_per_disk(stack, credentials_block, web01, root_raw, data_raw, make_request,
                                                         tmp_path):  # fmt: skip
    from support.prefect_stack import start_deployment, wait_for_state

    request = make_request(tmp_path / "out", vm=web01.name).model_copy(update={"credentials_block": credentials_block})
    run = start_deployment("migrate-vm/migrate-vm", {"request": request.model_dump(mode="json")})
    final = wait_for_state(run.id, timeout=300)
    assert final.state.is_completed(), final.state.message

    outputs = sorted((tmp_path / "out").glob("disk-*.qcow2"))
    assert [p.name for p in outputs] == ["disk-0.qcow2", "disk-1.qcow2"]
    assert_identical(root_raw, "raw", outputs[0])
    assert_identical(data_raw, "raw", outputs[1])
    assert snapshot_names(web01) == []
    texts = run_texts(run.id, tmp_path / "out")
    assert_password_never_shown(texts)

    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from support.prefect_stack import client

    with client() as c:
        artifacts = c.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
    progress = {a.key: a.data for a in artifacts if a.type == "progress"}
    assert progress == {f"download-{web01.name}-disk-0": 100.0, f"download-{web01.name}-disk-1": 100.0}, progress
