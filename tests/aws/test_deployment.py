"""An AWS migration run by the migrate-vm deployment on a real worker, as the UI or a schedule starts it."""

from __future__ import annotations

from support.migrate import assert_identical
from support.prefect_stack import client, start_deployment, wait_for_state

from hyperexport.report import MigrationReport


def test_deployment_migrates_an_instance_with_progress_per_disk(stack, aws, web01, root_raw, data_raw, make_request, tmp_path):
    request = make_request(tmp_path / "out", instance=web01.instance_id)
    # The worker's flow-run process reaches moto through the per-run environment, as a deployment's job variables.
    run = start_deployment(
        "migrate-vm/migrate-vm", {"request": request.model_dump(mode="json")}, job_variables={"env": aws.env()}
    )
    final = wait_for_state(run.id, timeout=300)
    assert final.state.is_completed(), final.state.message

    outputs = sorted((tmp_path / "out").glob("disk-*.qcow2"))
    assert [p.name for p in outputs] == ["disk-0.qcow2", "disk-1.qcow2"]
    assert_identical(root_raw, "raw", outputs[0])  # root volume first
    assert_identical(data_raw, "raw", outputs[1])
    report = MigrationReport.model_validate_json((tmp_path / "out" / "migration-report.json").read_text())
    assert report.provider == "aws" and report.validation.passed
    assert aws.tagged()["snapshots"] == [], "the run's snapshots were not cleaned up"

    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.client.schemas.sorting import ArtifactSort

    with client() as c:
        artifacts = c.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])),
            sort=ArtifactSort.CREATED_DESC, limit=50,
        )
    latest = {}  # what the UI's Artifacts page shows: the newest version of each key (a retried step adds one)
    for artifact in artifacts:
        if artifact.type == "progress":
            latest.setdefault(artifact.key, artifact)
    assert sorted(latest) == ["download-web01-disk-0", "download-web01-disk-1"], sorted(latest)
    assert all(artifact.data == 100.0 for artifact in latest.values())
