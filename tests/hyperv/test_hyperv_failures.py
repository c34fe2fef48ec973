"""Every failure the hyperv provider knows, each with its message, before the VM is touched where possible; no
password in any of them."""

from __future__ import annotations

import logging
import subprocess
import time

import pytest
from support.hyperv_lab import SECRETS, VM_DIR
from support.hyperv_winrm import closed_port

from hyperexport import migration
from hyperexport.errors import AccessDeniedError, HyperExportError, InvalidInputError, PermanentError, SourceNotFoundError, TransferError


@pytest.fixture
def fails(hyperv, make_request, tmp_path, caplog):
    """``fails(error_type, login=..., **source)``: the migration's error, after checking that no secret is in it or
    in the logs, and that the run left no checkpoint or export directory."""

    def run(error_type: type[HyperExportError], *, login=None, **source) -> HyperExportError:
        started = time.monotonic()
        with caplog.at_level(logging.DEBUG), pytest.raises(error_type) as raised:
            migration.run_migration(make_request(tmp_path / "out", **source), credentials=login or hyperv.login())
        assert time.monotonic() - started < 60
        for text in (str(raised.value), repr(raised.value), caplog.text):
            for secret in SECRETS:
                assert secret not in text
        assert hyperv.checkpoints() == [] and hyperv.run_dirs() == []
        assert not list((tmp_path / "out").rglob("*.vhdx")), "a disk was read"
        return raised.value

    return run


def test_host_unreachable(fails, hyperv):
    error = fails(TransferError, vm="web01", login=hyperv.login(endpoint=f"http://127.0.0.1:{closed_port()}/wsman"))
    assert "cannot reach the Hyper-V host 127.0.0.1" in str(error) and "WinRM listener" in str(error)


def test_wrong_password_is_refused_once_and_never_retried(fails, hyperv):
    error = fails(AccessDeniedError, vm="web01", login=hyperv.login(password="not-the-password"))
    assert isinstance(error, PermanentError) and error.field == "credentials_block"
    assert "refused the credentials of 'HV01\\\\migrator' (basic, HTTP 401)" in str(error)
    assert hyperv.winrm.auth_failures == 1
    assert "not-the-password" not in str(error)


def test_user_not_in_hyper_v_administrators(fails, hyperv):
    hyperv.host.identity.update(hyperv_admin=False, administrator=False)
    error = fails(AccessDeniedError, vm="web01")
    assert "is not a member of Hyper-V Administrators on HV01" in str(error) and "Add-LocalGroupMember" in str(error)
    assert not [s for s in hyperv.host.received if "Get-VM" in s], "the VM was looked up though the user may not manage it"


def test_vm_not_found_lists_the_vms_there(fails):
    error = fails(SourceNotFoundError, vm="web99")
    assert "there is no VM named 'web99' on 127.0.0.1" in str(error) and "'web01'" in str(error)
    assert error.field == "source.vm"


def test_several_vms_of_a_name_are_listed_with_their_ids(fails, hyperv):
    error = fails(InvalidInputError, vm="twin")
    twins = [vm for vm in hyperv.host.vms if vm.name == "twin"]
    assert "2 VMs are named 'twin'" in str(error) and all(vm.id in str(error) for vm in twins)
    assert error.field == "source.vm_id"


def test_one_of_several_is_chosen_by_its_id(hyperv, make_request, tmp_path):
    twin = [vm for vm in hyperv.host.vms if vm.name == "twin"][1]
    export = migration.export_vm(migration.preflight(make_request(tmp_path / "out", vm_id=twin.id)), hyperv.login(), run_id="twin-run")
    assert export.vm.vm_id == twin.id and export.metadata["state"] == "Off"
    migration.cleanup(migration.preflight(make_request(tmp_path / "out", vm_id=twin.id)), export, hyperv.login())
    assert hyperv.checkpoints() == []


def test_share_unreachable(fails, hyperv):
    error = fails(TransferError, vm="web01", login=hyperv.login(smb_port=closed_port()))
    assert "cannot reach the SMB server 127.0.0.1 on port" in str(error)


def test_smb_password_refused(fails, hyperv):
    error = fails(AccessDeniedError, vm="web01", login=hyperv.login(smb_password="wrong-smb"))
    assert "the SMB server 127.0.0.1 denied 'migrator'" in str(error) and "smb_password" in str(error)


def test_share_access_denied(fails, hyperv):
    error = fails(AccessDeniedError, vm="web01", export_method="export", share="\\\\127.0.0.1\\denied",
                  share_local_path="E:\\denied")  # fmt: skip
    assert "denied 'migrator' listing \\\\127.0.0.1\\denied" in str(error) and "Grant-SmbShareAccess" in str(error)


def test_share_that_does_not_exist(fails, hyperv):
    error = fails(SourceNotFoundError, vm="web01", export_method="export", share="\\\\127.0.0.1\\nosuch",
                  share_local_path="E:\\nosuch")  # fmt: skip
    assert "has no share named 'nosuch'" in str(error) and error.field == "source.share"


def test_checkpoint_refused_for_a_pass_through_disk(fails):
    error = fails(InvalidInputError, vm="db01")
    assert "pass-through disk at SCSI 0:1 (physical disk 2)" in str(error) and "New-VHD -SourceDisk" in str(error)


def test_checkpoint_refused_by_hyper_v(fails):
    error = fails(InvalidInputError, vm="novss")
    assert "Hyper-V refused a production checkpoint of VM 'novss'" in str(error)
    assert "backup integration service is not running" in str(error) and "export_method export" in str(error)


def test_qemu_img_cannot_read_a_vhdx_differencing_disk(hyperv):
    """Why a chain is refused rather than handed to qemu-img: it does not read VHDX files with a parent."""
    avhdx = hyperv.host.local(f"{VM_DIR}\\chain-os_6A1B2C3D.avhdx")
    done = subprocess.run(["qemu-img", "info", "-f", "vhdx", str(avhdx)], capture_output=True, text=True)
    assert done.returncode != 0 and "not supported" in done.stderr.lower(), done.stderr


@pytest.mark.parametrize("method", ["checkpoint", "export"])
def test_a_differencing_chain_is_refused_with_what_to_do(fails, hyperv, method):
    error = fails(InvalidInputError, vm="chain01", export_method=method, share=hyperv.share)
    message = str(error)
    assert "is a differencing disk" in message and "chain-os_6A1B2C3D.avhdx" in message and "chain-os.vhdx" in message
    assert "qemu-img cannot read VHDX differencing chains" in message and "Remove-VMCheckpoint" in message
    assert not [s for s in hyperv.host.received if "Checkpoint-VM" in s or "Export-VM -VM" in s]


def test_a_checkpoint_left_by_a_given_up_run_says_how_to_remove_it(hyperv, make_request, tmp_path):
    keep = {"keep_cloud_artifacts": True}
    migration.export_vm(migration.preflight(make_request(tmp_path / "a", vm="web01", export=keep)), hyperv.login(), run_id="left-behind")

    with pytest.raises(InvalidInputError) as raised:
        migration.export_vm(migration.preflight(make_request(tmp_path / "b", vm="web01")), hyperv.login())

    assert "left-behind: left by hyperexport runs" in str(raised.value) and "--cleanup-run RUN_ID" in str(raised.value)
    assert hyperv.checkpoints() == [("web01", "hyperexport-left-behind")], "the second run touched the first one's checkpoint"


def test_a_cmdlet_refused_by_the_hosts_authorization_policy_is_access_denied(fails, hyperv):
    hyperv.host.denied = {"describe_vm"}
    error = fails(AccessDeniedError, vm="web01")
    assert "denied 'HV01\\\\migrator' describe_vm: You do not have the required permission" in str(error)
    assert "Hyper-V Administrators" in str(error) and error.field == "credentials_block"


def test_a_transport_whose_package_is_missing_says_what_to_install(fails, hyperv):
    import importlib.util

    assert importlib.util.find_spec("requests_credssp") is None, "this test needs a worker without requests-credssp"
    error = fails(InvalidInputError, vm="web01", login=hyperv.login(transport="credssp"))
    assert "WinRM credssp authentication needs a package" in str(error) and "'pywinrm[credssp]'" in str(error)


@pytest.mark.parametrize("method", ["checkpoint", "export"])
def test_a_share_on_another_server_is_refused(fails, method):
    """Its admin shares and the export would be asked of the wrong machine, with the host's login."""
    error = fails(InvalidInputError, vm="web01", export_method=method, share="\\\\fileserver.example\\exports")
    assert "is on 'fileserver.example', not on the Hyper-V host '127.0.0.1'" in str(error) and error.field == "source.share"


def test_a_description_too_large_to_be_a_vm_is_refused(fails, hyperv):
    with hyperv.host.lock:
        hyperv.host.vms[0].nics = [("Network Adapter", "00155D010203", "External")] * 1100
    error = fails(TransferError, vm="web01")
    assert "answer to Get-VM / Get-VMHardDiskDrive is not what hyperexport expects" in str(error) and "at most 1024 items" in str(error)
