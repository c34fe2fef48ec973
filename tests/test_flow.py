"""The migrate-vm flow on a real Prefect server: artifacts, tags, and a retry that skips finished steps."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.sorting import ArtifactSort, TaskRunSort
from prefect.flow_engine import run_flow
from prefect.states import AwaitingRetry

from flows.migrate_vm import migrate_vm
from hyperexport.samples import make_disk, make_ova
from support.migrate import assert_identical, local_request


def task_runs_by_name(flow_run_id) -> dict[str, list]:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
            sort=TaskRunSort.EXPECTED_START_TIME_ASC, limit=200,
        )
    grouped: dict[str, list] = {}
    for run in sorted(runs, key=lambda r: r.expected_start_time or r.created):
        grouped.setdefault(run.name.rsplit("-", 1)[0], []).append(run)
    return grouped


def artifacts_of(flow_run_id) -> list:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])),
            sort=ArtifactSort.CREATED_DESC, limit=200,
        )


def test_flow_publishes_progress_and_summary_artifacts_and_tags_tasks(prefect_server, base_raw, second_raw, tmp_path):
    ova = make_ova([base_raw, second_raw], tmp_path / "shop.ova", "shop")
    state = migrate_vm(local_request(ova, tmp_path / "out"), return_state=True)
    assert state.is_completed(), state.message
    report = state.result()
    for output, raw in zip(report.conversion.converted_files, [base_raw, second_raw]):
        assert_identical(raw, "raw", output)

    flow_run_id = state.state_details.flow_run_id
    # The report is the flow's persisted result: what the API hands back for the run (to a client, and to the
    # command line when the server rejects a resent Completed as a duplicate) loads, not MissingResult.
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(flow_run_id).state.result() == report
    runs = task_runs_by_name(flow_run_id)
    assert {"export", "download", "generate-manifest", "detect-provider", "convert", "validate", "report"} <= set(runs)
    for name in ("export", "download", "convert", "validate"):
        assert all("local" in run.tags for run in runs[name]), f"{name} is not tagged with its provider"
    assert len(runs["download"]) == 2

    artifacts = artifacts_of(flow_run_id)
    progress = [a for a in artifacts if a.type == "progress"]
    assert len(progress) == 2 and all(a.data == 100.0 for a in progress)
    summary = [a for a in artifacts if a.type == "markdown"]
    assert len(summary) == 1
    text = summary[0].data
    assert "| disk-0 |" in text and "| disk-1 |" in text and "passed" in text and "disk-1.qcow2" in text


@pytest.fixture
def flaky_hyper2kvm(tmp_path) -> tuple[Path, Path]:
    """The real hyper2kvm, refusing to run while a marker file exists."""
    marker = tmp_path / "fail-now"
    marker.touch()
    real = Path(sys.executable).parent / "hyper2kvm"
    binary = tmp_path / "hyper2kvm"
    binary.write_text(f'#!/bin/sh\nif [ -e "{marker}" ]; then echo "simulated converter crash" >&2; exit 3; fi\nexec "{real}" "$@"\n')
    binary.chmod(0o755)
    return binary, marker


def test_retried_flow_run_skips_export_and_download(prefect_server, base_raw, flaky_hyper2kvm, tmp_path):
    binary, marker = flaky_hyper2kvm
    disk = make_disk(base_raw, "vmdk-stream", tmp_path / "src")
    request = local_request(disk, tmp_path / "out")
    request.converter_config.binary_path = binary
    parameters = {"request": request}

    with get_client(sync_client=True) as client:
        flow_run = client.create_flow_run(migrate_vm, parameters=parameters)
    first = run_flow(migrate_vm, flow_run=flow_run, parameters=parameters, return_type="state")
    assert first.is_failed()
    message = str(first.result(raise_on_failure=False))
    assert "hyper2kvm failed" in message and "simulated converter crash" in message, message

    # What the dashboard's Retry does: force the run back to AwaitingRetry, then a runner picks it up.
    marker.unlink()
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run.id, AwaitingRetry(), force=True)
        flow_run = client.read_flow_run(flow_run.id)
    second = run_flow(migrate_vm, flow_run=flow_run, parameters=parameters, return_type="state")
    assert second.is_completed(), second.message

    runs = task_runs_by_name(flow_run.id)
    for step in ("export", "download"):
        states = [run.state.name for run in runs[step]]
        assert states == ["Completed", "Cached"], f"{step} ran again on retry: {states}"
    # A converter that exits non-zero fails the same way again: no retry inside the run, one by the user.
    convert_states = [run.state.name for run in runs["convert"]]
    assert convert_states == ["Failed", "Completed"], convert_states
    assert_identical(base_raw, "raw", tmp_path / "out" / "disk-0.qcow2")


def test_progress_artifact_moves_during_the_download(prefect_server, http_server, tmp_path):
    import contextvars
    import threading

    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from hyperexport.samples import make_base_raw

    source = make_base_raw(tmp_path / "slowvm.raw", 12)
    url = http_server.add_file("/slowvm.raw", source)
    request = local_request(url, tmp_path / "out", "qemu-img")
    request.export.bandwidth_limit_bps = 3 * 2**20  # about 4 s
    states = []
    context = contextvars.copy_context()  # the Prefect settings (API URL) live in a context variable
    runner = threading.Thread(target=lambda: states.append(context.run(migrate_vm, request, return_state=True)))
    runner.start()
    seen: set[float] = set()
    with get_client(sync_client=True) as client:
        while runner.is_alive():
            artifacts = client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["download-slowvm-disk-0"])),
                sort=ArtifactSort.CREATED_DESC, limit=1,
            )
            seen.update(a.data for a in artifacts if a.data is not None)
            time.sleep(0.3)
    runner.join()
    assert states[0].is_completed(), states[0].message
    assert any(0 < value < 100 for value in seen), f"the artifact never showed progress between 0 and 100: {sorted(seen)}"
    assert_identical(source, "raw", tmp_path / "out" / "disk-0.qcow2")


def test_nothing_the_flow_adds_carries_the_urls_user_password_or_query(prefect_server, http_server, base_raw, tmp_path):
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    http_server.add_file("/web-01.raw", base_raw)
    url = f"http://alice:Hunter2Password@127.0.0.1:{http_server.port}/web-01.raw?sig=TopSecretSignature"
    state = migrate_vm(local_request(url, tmp_path / "out", "qemu-img"), return_state=True)
    assert state.is_completed(), state.message

    flow_run_id = state.state_details.flow_run_id
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # the run's logs reach the server in batches, every 2 s
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200)
    assert run.name.startswith("migrate-local-web-01.raw-"), run.name
    texts = [run.name, *(r.name for runs in task_runs_by_name(flow_run_id).values() for r in runs)]
    texts += [log.message for log in logs]
    texts += [a.model_dump_json() for a in artifacts_of(flow_run_id)]
    assert logs and len(texts) > 10
    for secret in ("alice", "Hunter2Password", "TopSecretSignature", "sig="):
        assert not [t for t in texts if secret in t], f"{secret!r} reached a run name, log or artifact"
