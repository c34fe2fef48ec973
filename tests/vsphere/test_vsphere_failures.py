"""Each way a vSphere migration can be refused or fail, with its message; the password in none of them."""

from __future__ import annotations

import pytest
from support.vsphere_inventory import snapshot_names
from pydantic import SecretStr
from support.vsphere_inventory import Disk
from support.vsphere_sim import PASSWORD, USER

from hyperexport import migration
from hyperexport.errors import AccessDeniedError, InvalidInputError, PermanentError, SourceNotFoundError
from hyperexport.migration import run_migration
from hyperexport.providers.vsphere import VsphereLogin


def _refused(request, login) -> PermanentError:
    with pytest.raises(PermanentError) as raised:
        run_migration(request, credentials=login)
    assert PASSWORD not in str(raised.value) and PASSWORD not in repr(raised.value)
    return raised.value


def test_wrong_password_is_refused_without_retry(vcsim, web01, make_request, tmp_path):
    wrong = VsphereLogin(host=vcsim.host, port=vcsim.port, user=USER, password=SecretStr("not-the-password"),
                         ssl_context=vcsim.ssl_context())  # fmt: skip
    error = _refused(make_request(tmp_path / "out", vm=web01.name), wrong)
    assert isinstance(error, AccessDeniedError) and not error.retryable
    assert f"refused the login of {USER!r}: wrong user name or password" in str(error)
    assert "not-the-password" not in str(error) and error.field == "credentials_block"
    assert snapshot_names(web01) == []


def test_unknown_vm_suggests_close_names(login, web01, make_request, tmp_path):
    error = _refused(make_request(tmp_path / "out", vm=web01.name[:-1] + "x"), login)
    assert isinstance(error, SourceNotFoundError) and error.field == "source.vm"
    assert f"there is no VM named {web01.name[:-1] + 'x'!r}. Did you mean: " in str(error) and web01.name in str(error)


def test_a_name_of_several_vms_lists_them_and_a_path_moid_or_uuid_picks_one(login, make_vm_in, data_raw, make_request,
                                                                            tmp_path):  # fmt: skip
    first = make_vm_in([Disk(data_raw)], name="twin")
    second = make_vm_in([Disk(data_raw)], name="twin", folder="team-a")
    error = _refused(make_request(tmp_path / "out", vm="twin"), login)
    assert isinstance(error, InvalidInputError) and error.field == "source.vm"
    assert f"2 VMs are named 'twin': /DC0/vm/team-a/twin ({second.moid}); /DC0/vm/twin ({first.moid})" in str(error)
    assert "inventory path or managed object id" in str(error)

    uuid = second.vm.config.instanceUuid
    for reference in ("/DC0/vm/team-a/twin", second.moid, uuid):
        request = make_request(tmp_path / "out", vm=reference, datacenter="DC0")
        export = migration.export_vm(migration.preflight(request), login)
        assert export.vm.vm_id == second.moid, reference
        migration.cleanup(migration.preflight(request), export, login)
    assert snapshot_names(first) == [] and snapshot_names(second) == []


def test_unknown_datacenter_names_the_ones_there_are(login, web01, make_request, tmp_path):
    error = _refused(make_request(tmp_path / "out", vm=web01.name, datacenter="DC9"), login)
    assert isinstance(error, SourceNotFoundError) and error.field == "source.datacenter"
    assert str(error) == "there is no datacenter 'DC9' on this vCenter; its datacenters: DC0"


def test_tls_verification_failure_names_ca_bundle_and_verify_tls(vcsim, web01, make_request, tmp_path):
    from blocks.vsphere import VsphereCredentials

    block = VsphereCredentials(host=vcsim.host, port=vcsim.port, user=USER, password=PASSWORD,
                               ca_bundle=vcsim.certificates.other_ca.read_text())  # fmt: skip
    error = _refused(make_request(tmp_path / "out", vm=web01.name), block.engine_credentials())
    assert isinstance(error, InvalidInputError) and error.field == "credentials_block"
    assert "TLS certificate of vSphere at 127.0.0.1" in str(error) and "could not be verified" in str(error)
    assert "ca_bundle" in str(error) and "verify_tls" in str(error)
    # With the CA that signed it, the same block connects: verification is on, not off.
    trusted = block.model_copy(update={"ca_bundle": str(vcsim.certificates.ca)})
    assert trusted.ssl_context().verify_mode.name == "CERT_REQUIRED"
    from pyVim.connect import Disconnect

    Disconnect(trusted.get_client())


def test_missing_privilege_is_named(vcsim, login, web01, make_request, tmp_path):
    vcsim.inject_fault("CreateSnapshot_Task", "NoPermission", object=web01.moid, privilege="VirtualMachine.State.CreateSnapshot")
    error = _refused(make_request(tmp_path / "out", vm=web01.name), login)
    assert isinstance(error, AccessDeniedError)
    assert f"the user lacks the privilege VirtualMachine.State.CreateSnapshot on {web01.moid}" in str(error)


def test_refused_snapshot_says_why_and_what_to_check(vcsim, login, web01, make_request, tmp_path):
    vcsim.inject_fault("CreateSnapshot_Task", "SnapshotDisabled", object=web01.moid)
    error = _refused(make_request(tmp_path / "out", vm=web01.name), login)
    assert isinstance(error, InvalidInputError) and error.field == "source.vm"
    assert f"vSphere refused creating the snapshot of VM {web01.moid} (SnapshotDisabled)" in str(error)
    assert "check that snapshots are allowed for it" in str(error)
    assert snapshot_names(web01) == []


def test_datastore_file_vanishing_mid_read_fails_and_removes_the_snapshot(login, web01, make_request, tmp_path):
    extent = web01.extents[1]  # the boot disk: read first
    hidden = extent.with_name(extent.name + ".moved")

    def move_away(current, total, *_):
        if not hidden.exists():
            extent.rename(hidden)

    request = make_request(tmp_path / "out", vm=web01.name, export={"connections": 1})
    request = request.model_copy(update={"export": request.export.model_copy(update={"progress_callback": move_away})})
    try:
        error = _refused(request, login)
    finally:
        hidden.rename(extent)
    assert isinstance(error, SourceNotFoundError)
    assert f"the datastore file [LocalDS_0] {web01.name}/{extent.name} vanished during the download" in str(error)
    assert snapshot_names(web01) == [], "a permanent failure removes the run's snapshot"


def test_a_snapshot_whose_task_poll_failed_is_removed_all_the_same(vcsim, login, web01, make_request, tmp_path):
    # vSphere takes the snapshot; the first poll of its task fails (as a dropped connection or a timeout would)
    vcsim.inject_fault("Fetch", "NoPermission", object="task-*", privilege="System.Read", times=1)
    error = _refused(make_request(tmp_path / "out", vm=web01.name), login)
    assert isinstance(error, AccessDeniedError)
    assert f"vSphere denied creating the snapshot of VM {web01.moid}: the user lacks the privilege System.Read" in str(error)
    assert snapshot_names(web01) == [], "the snapshot vSphere took is found by the run's name and rolled back"
