"""A run given up on is cleaned up by its run id alone; nothing another run or a person made is touched."""

from __future__ import annotations

from support.vsphere_inventory import snapshot_names

from support.vsphere_inventory import task

from hyperexport import cli, migration
from hyperexport.providers.vsphere.snapshots import run_snapshot_name


def test_cleanup_run_removes_only_that_runs_snapshot(prefect_server, credentials_block, login, web01, make_request,
                                                     tmp_path, capsys):  # fmt: skip
    keep = {"keep_cloud_artifacts": True}
    given_up = migration.export_vm(migration.preflight(make_request(tmp_path / "a", vm=web01.name, export=keep)), login)
    other = migration.export_vm(migration.preflight(make_request(tmp_path / "b", vm=web01.name, export=keep)), login)
    task(web01.vm.CreateSnapshot_Task(name="before-upgrade", description="a person's", memory=False, quiesce=False))
    assert sorted(snapshot_names(web01)) == sorted(
        ["before-upgrade", run_snapshot_name(given_up.run_id), run_snapshot_name(other.run_id)])

    code = cli.main(["--provider", "vsphere", "--credentials-block", credentials_block, "--cleanup-run", given_up.run_id])

    out = capsys.readouterr().out
    assert code == cli.EXIT_OK, out
    assert f"removed: snapshot {given_up.created_resources[0].id} in {web01.moid}" in out
    assert f"run {given_up.run_id}: 1 resource(s) removed" in out
    assert sorted(snapshot_names(web01)) == sorted(["before-upgrade", run_snapshot_name(other.run_id)])
    assert migration.cleanup(migration.preflight(make_request(tmp_path / "b", vm=web01.name)), other, login) == other.created_resources
    assert snapshot_names(web01) == ["before-upgrade"]


def test_a_removal_no_retry_can_fix_is_a_permanent_error(vcsim, login, web01, make_request, tmp_path):
    import pytest

    from hyperexport.errors import AccessDeniedError

    export = migration.export_vm(migration.preflight(make_request(tmp_path / "a", vm=web01.name, export={"keep_cloud_artifacts": True})), login)
    request = make_request(tmp_path / "a", vm=web01.name)
    (snapshot,) = export.created_resources
    vcsim.inject_fault("RemoveSnapshot_Task", "NoPermission", object=snapshot.id, privilege="VirtualMachine.State.RemoveSnapshot")

    with pytest.raises(AccessDeniedError) as raised:
        migration.cleanup(migration.preflight(request), export, login)

    assert not raised.value.retryable and raised.value.field == "credentials_block"
    assert f"could not remove 1 resource(s) of run {export.run_id}: " in str(raised.value)
    assert "the user lacks the privilege VirtualMachine.State.RemoveSnapshot" in str(raised.value)
    vcsim.clear_faults()
    assert migration.cleanup(migration.preflight(request), export, login) == export.created_resources
    assert snapshot_names(web01) == []
