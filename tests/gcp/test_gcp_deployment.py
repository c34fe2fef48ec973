"""A GCP migration run by the migrate-vm deployment on a real worker, as the UI or a schedule starts it."""

from __future__ import annotations

from support.gcp_requests import key_secrets
from support.migrate import assert_identical
from support.prefect_stack import client, start_deployment, wait_for_state

from hyperexport.report import MigrationReport


def test_deployment_migrates_an_instance_with_progress_per_disk(stack, gce, web01, gcp_block, key_info, boot_raw, data_raw,
                                                                make_request, tmp_path):  # fmt: skip
    before = gce.inventory()
    request = make_request(tmp_path / "out", instance="web01").model_copy(update={"credentials_block": gcp_block})

    run = start_deployment("migrate-vm/migrate-vm", {"request": request.model_dump(mode="json")})
    final = wait_for_state(run.id, timeout=300)
    assert final.state.is_completed(), final.state.message

    outputs = sorted((tmp_path / "out").glob("disk-*.qcow2"))
    assert [p.name for p in outputs] == ["disk-0.qcow2", "disk-1.qcow2"]
    assert_identical(boot_raw, "raw", outputs[0])  # the boot disk first
    assert_identical(data_raw, "raw", outputs[1])
    report = MigrationReport.model_validate_json((tmp_path / "out" / "migration-report.json").read_text())
    assert report.provider == "gcp" and report.validation.passed
    assert gce.inventory() == before, "the run left something at the source"

    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import ArtifactSort

    with client() as c:
        artifacts = c.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])),
            sort=ArtifactSort.CREATED_DESC, limit=50,
        )
        logs = c.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])), limit=200)
    latest = {}  # the newest version of each key, as the UI's Artifacts page shows
    for artifact in artifacts:
        if artifact.type == "progress":
            latest.setdefault(artifact.key, artifact)
    assert sorted(latest) == ["download-web01-disk-0", "download-web01-disk-1"], sorted(latest)
    assert all(artifact.data == 100.0 for artifact in latest.values())
    shown = "\n".join([log.message for log in logs] + [str(a.data) for a in artifacts] + [final.state.message or ""])
    for secret in key_secrets(key_info):
        assert secret not in shown
