"""A run given up on is cleaned up by its run id alone, and nothing of another run is touched."""

from __future__ import annotations

from support.moto_aws import REGION

from hyperexport import cli, migration


def test_cleanup_run_removes_only_that_runs_resources(aws, light01, make_request, tmp_path, capsys):
    keep = {"keep_cloud_artifacts": True}
    given_up = migration.export_vm(migration.preflight(make_request(tmp_path / "a", instance=light01.instance_id, export=keep)))
    other = migration.export_vm(migration.preflight(make_request(tmp_path / "b", instance=light01.instance_id, export=keep)))
    run_id, other_id = given_up.run_id, other.run_id
    assert len(aws.tagged(run_id)["snapshots"]) == 2 and len(aws.tagged(other_id)["snapshots"]) == 2

    code = cli.main(["--provider", "aws", "--region", REGION, "--cleanup-run", run_id])

    out = capsys.readouterr().out
    assert code == cli.EXIT_OK
    assert f"run {run_id}: 2 resource(s) removed" in out
    assert aws.tagged(run_id)["snapshots"] == []
    assert sorted(aws.tagged(other_id)["snapshots"]) == sorted(r.id for r in other.created_resources)


def test_cleanup_run_of_the_local_provider_removes_nothing(tmp_path):
    assert migration.cleanup_run("local", {"source": str(tmp_path)}, "anything") == []
