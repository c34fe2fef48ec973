"""A run given up on is cleaned up by its run id alone, and nothing of another run is touched."""

from __future__ import annotations

from support.gcp_requests import source

from hyperexport import migration


def test_cleanup_run_removes_only_that_runs_snapshots_and_objects(gce, web01, login, make_request, tmp_path):
    before = gce.inventory()
    keep = {"keep_cloud_artifacts": True}
    given_up = migration.export_vm(migration.preflight(make_request(tmp_path / "a", instance="web01", export=keep)), login)
    other = migration.export_vm(migration.preflight(make_request(tmp_path / "b", instance="web01", export=keep)), login)
    assert len(gce.labelled(given_up.run_id)) == 2 and len(gce.labelled(other.run_id)) == 2

    removed = migration.cleanup_run("gcp", source(), given_up.run_id, login)

    assert {(r.kind, r.id) for r in removed} == {(r.kind, r.id) for r in given_up.created_resources}
    assert gce.labelled(given_up.run_id) == set()
    left = gce.inventory() - before
    assert left == {("snapshot", r.id) for r in other.created_resources if r.kind == "snapshot"} | {
        ("object", f"hx-exports/hyperexport/{other.run_id}/{name}.qcow2") for name in web01.disks
    }
    migration.cleanup(migration.preflight(make_request(tmp_path / "b", instance="web01")), other, login)
    assert gce.inventory() == before


def test_cleanup_leaves_a_recorded_snapshot_without_the_run_label_alone(gce, web01, login):
    from hyperexport.models import Resource

    removed = migration.get_provider("gcp").remove(
        "run-x", [Resource(kind="snapshot", id="web01-nightly")], migration.get_provider("gcp").parse(source()), login
    )

    assert removed == [] and "web01-nightly" in gce.snapshots
