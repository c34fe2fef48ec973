"""The gcp provider through the hyperexport command (its flow on the real Prefect server), with a service
account block; the key is never shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support.gcp_compute import PROJECT, ZONE
from support.gcp_requests import key_secrets
from support.gcp_storage import BUCKET
from support.migrate import assert_identical

from hyperexport import cli, migration
from hyperexport.report import MigrationReport

HYPEREXPORT = str(Path(sys.executable).with_name("hyperexport"))


def _run(prefect_server, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([HYPEREXPORT, *args], env=prefect_server.env(), capture_output=True, text=True, timeout=300,
                          check=False)  # fmt: skip


def _server_logs() -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return "\n".join(log.message for log in client.read_logs(limit=200))


def _progress_of_run_into(output: Path) -> dict[str, float]:
    """The progress artifacts of the flow run that wrote into ``output``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=50)
        ours = [r.id for r in runs if str(output) in str(r.parameters)]
        assert len(ours) == 1, f"{len(ours)} flow runs wrote into {output}"
        artifacts = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ours)))
    return {a.key: a.data for a in artifacts if a.type == "progress"}


def _assert_no_secret(key_info: dict, *texts: str) -> None:
    for secret in key_secrets(key_info):
        for text in texts:
            assert secret not in text, "the service account key shows"


def test_command_line_migrates_an_instance(prefect_server, gce, web01, gcp_block, key_info, boot_raw, data_raw, tmp_path):
    before = gce.inventory()
    out = tmp_path / "out"

    done = _run(prefect_server, "--provider", "gcp", "--instance", "web01", "--zone", ZONE, "--project", PROJECT,
                "--opt", f"bucket={BUCKET}", "--opt", "poll_seconds=0.01", "--credentials-block", gcp_block,
                "--output", str(out), "--convert")  # fmt: skip

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    outputs = sorted(out.glob("*.qcow2"))
    assert [p.name for p in outputs] == ["disk-0.qcow2", "disk-1.qcow2"]
    assert_identical(boot_raw, "raw", outputs[0])
    assert_identical(data_raw, "raw", outputs[1])
    report = MigrationReport.model_validate_json((out / "migration-report.json").read_text())
    assert report.provider == "gcp" and report.validation.passed
    assert _progress_of_run_into(out) == {"download-web01-disk-0": 100.0, "download-web01-disk-1": 100.0}
    assert gce.inventory() == before
    assert gce.count("POST", "^/token$") > 0, "the service account key was not used"
    files = [p.read_text(errors="replace") for p in out.rglob("*") if p.is_file() and p.suffix in (".json", ".xml", ".txt", ".log", "")]
    _assert_no_secret(key_info, done.stdout, done.stderr, _server_logs(), *files)


def test_command_line_error_names_the_permission_and_never_the_key(prefect_server, gce, web01, gcp_block, key_info, tmp_path,
                                                                   capsys):  # fmt: skip
    gce.faults.denied = {"compute.instances.create"}
    before = gce.inventory()

    code = cli.main(["--no-progress", "--provider", "gcp", "--instance", "web01", "--zone", ZONE, "--opt", f"bucket={BUCKET}",
                     "--opt", "poll_seconds=0.01", "--credentials-block", gcp_block, "--output", str(tmp_path / "out")])  # fmt: skip

    shown = capsys.readouterr()
    assert code == 2, shown.out[-3000:] + shown.err[-3000:]
    assert "lacks the permission compute.instances.create" in shown.out + shown.err
    gce.join_workers()
    assert gce.inventory() == before
    _assert_no_secret(key_info, shown.out, shown.err, _server_logs())


def test_cleanup_run_command(prefect_server, gce, web01, gcp_block, login, make_request, tmp_path, capsys):
    given_up = migration.export_vm(migration.preflight(make_request(tmp_path / "a", instance="web01", export={"keep_cloud_artifacts": True})), login)

    code = cli.main(["--provider", "gcp", "--zone", ZONE, "--project", PROJECT, "--opt", f"bucket={BUCKET}",
                     "--credentials-block", gcp_block, "--cleanup-run", given_up.run_id])  # fmt: skip

    out = capsys.readouterr().out
    assert code == cli.EXIT_OK, out
    assert f"run {given_up.run_id}: 3 resource(s) removed" in out
    assert gce.labelled(given_up.run_id) == set()
    assert not list(gce.gcs.client(PROJECT).list_blobs(BUCKET, prefix=f"hyperexport/{given_up.run_id}/"))
