"""The hyperv provider as users run it: the hyperexport command with a credentials block, and the migrate-vm
deployment on the real worker; a progress artifact per disk, no password in any log, artifact or report."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from support.hyperv_lab import SECRETS
from support.migrate import assert_identical
from support.prefect_stack import client, start_deployment, wait_for_state


def _run_texts(flow_run_id) -> tuple[dict[str, float], list[str]]:
    """The run's progress artifacts (newest of each key) and the text of all its artifacts and logs."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import ArtifactSort

    deadline = time.monotonic() + 60  # a run's logs reach the server shortly after it ends (a background writer)
    while True:
        with client() as c:
            artifacts = c.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])),
                                         sort=ArtifactSort.CREATED_DESC, limit=100)  # fmt: skip
            logs: list = []
            while page := c.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200,
                                      offset=len(logs)):  # fmt: skip
                logs += page
            parameters = json.dumps(c.read_flow_run(flow_run_id).parameters)
        if (logs and artifacts) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert logs and artifacts, "nothing to scan"
    progress: dict[str, float] = {}
    for artifact in artifacts:
        if artifact.type == "progress":
            progress.setdefault(artifact.key, artifact.data)
    return progress, [json.dumps(a.data) + (a.description or "") for a in artifacts] + [log.message for log in logs] + [parameters]


def _assert_no_secret(texts: list[str]) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"a password in {text[:300]!r}"


def test_command_line_migrates_a_vm_with_a_credentials_block(hyperv, hyperv_block, prefect_server, tmp_path):
    out = tmp_path / "out"
    command = [str(Path(sys.executable).with_name("hyperexport")), "--provider", "hyperv", "--vm", "web01",
               "--credentials-block", hyperv_block, "--opt", f"share={hyperv.share}", "--output", str(out), "--convert"]  # fmt: skip

    done = subprocess.run(command, env=prefect_server.env(), capture_output=True, text=True, timeout=300, check=False)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    outputs = sorted(out.glob("*.qcow2"))
    assert [p.name for p in outputs] == ["disk-0.qcow2", "disk-1.qcow2"]
    assert_identical(hyperv.boot_raw, "raw", outputs[0])
    assert_identical(hyperv.data_raw, "raw", outputs[1])
    report = json.loads((out / "migration-report.json").read_text())
    assert report["provider"] == "hyperv" and report["export_method"] == "checkpoint"
    assert hyperv.checkpoints() == []
    from prefect.client.schemas.sorting import FlowRunSort

    with client() as c:  # this command's run: other suites' runs may have started since
        [run] = [r for r in c.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=50) if str(out) in json.dumps(r.parameters)][:1]
    progress, texts = _run_texts(run.id)
    assert progress == {"download-web01-disk-0": 100.0, "download-web01-disk-1": 100.0}
    _assert_no_secret([done.stdout, done.stderr, *texts, *(p.read_text() for p in out.glob("*.json")), *(p.read_text() for p in out.glob("*.md"))])


def test_command_line_names_the_flag_of_a_vm_that_is_not_there(hyperv, hyperv_block, prefect_server, tmp_path):
    command = [str(Path(sys.executable).with_name("hyperexport")), "--provider", "hyperv", "--vm", "web99",
               "--credentials-block", hyperv_block, "--output", str(tmp_path / "out")]  # fmt: skip

    done = subprocess.run(command, env=prefect_server.env(), capture_output=True, text=True, timeout=300, check=False)

    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-3000:]
    assert "there is no VM named 'web99' on 127.0.0.1" in done.stderr and "--vm" in done.stderr
    _assert_no_secret([done.stdout, done.stderr])


def test_deployment_migrates_a_vm_through_export_with_progress_per_disk(stack, hyperv, hyperv_block, make_request, tmp_path):
    request = make_request(tmp_path / "out", vm="web01", export_method="export", share=hyperv.share, block=hyperv_block)
    run = start_deployment("migrate-vm/migrate-vm", {"request": request.model_dump(mode="json")})
    final = wait_for_state(run.id, timeout=300)
    assert final.state.is_completed(), final.state.message

    outputs = sorted((tmp_path / "out").glob("disk-*.qcow2"))
    assert [p.name for p in outputs] == ["disk-0.qcow2", "disk-1.qcow2"]
    assert_identical(hyperv.boot_raw, "raw", outputs[0])
    assert_identical(hyperv.data_raw, "raw", outputs[1])
    assert hyperv.run_dirs() == [] and hyperv.checkpoints() == []
    progress, texts = _run_texts(run.id)
    assert progress == {"download-web01-disk-0": 100.0, "download-web01-disk-1": 100.0}
    _assert_no_secret([*texts, (tmp_path / "out" / "migration-report.json").read_text()])


def test_command_line_cleanup_run_removes_a_given_up_runs_checkpoint_and_export(hyperv, hyperv_block, make_request,
                                                                                prefect_server, tmp_path):  # fmt: skip
    from hyperexport import migration

    login = hyperv.login()
    keep = {"keep_cloud_artifacts": True}
    exported = make_request(tmp_path / "b", vm="web01", export_method="export", share=hyperv.share, export=keep)
    migration.export_vm(migration.preflight(exported), login, run_id="cli-given-up")
    migration.export_vm(migration.preflight(make_request(tmp_path / "a", vm="web01", export=keep)), login, run_id="cli-given-up")
    assert hyperv.checkpoints() == [("web01", "hyperexport-cli-given-up")] and hyperv.run_dirs() == ["cli-given-up"]
    command = [str(Path(sys.executable).with_name("hyperexport")), "--provider", "hyperv", "--cleanup-run", "cli-given-up",
               "--credentials-block", hyperv_block, "--opt", f"share={hyperv.share}"]  # fmt: skip

    done = subprocess.run(command, env=prefect_server.env(), capture_output=True, text=True, timeout=120, check=False)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "run cli-given-up: 2 resource(s) removed" in done.stdout
    assert hyperv.checkpoints() == [] and hyperv.run_dirs() == []
    _assert_no_secret([done.stdout, done.stderr])
