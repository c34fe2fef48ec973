"""Each failure the azure provider can meet, with its message: what went wrong and what to do."""

from __future__ import annotations

import logging

import pytest
from support.azure_arm import CLIENT_SECRET, RG
from support.migrate import assert_identical

from hyperexport.errors import AccessDeniedError, InvalidInputError, SourceNotFoundError
from hyperexport.migration import export_vm, preflight, run_migration
from hyperexport.providers import lifecycle
from hyperexport.providers.registry import get_provider


def _cleanup(request, export, login) -> None:
    provider = get_provider("azure")
    lifecycle.cleanup(provider, export, provider.parse(request.source), login)


def test_vm_not_found(arm, web01, make_request, tmp_path):
    with pytest.raises(SourceNotFoundError, match=r"reading VM web02 in resource group rg-web: VM web02 in resource group rg-web does not exist"):
        export_vm(preflight(make_request(tmp_path / "out", vm="web02")), arm.login())


def test_resource_group_not_found(arm, web01, make_request, tmp_path):
    with pytest.raises(SourceNotFoundError, match=r"the resource group does not exist \(ResourceGroupNotFound: Resource group 'rg-gone'"):
        export_vm(preflight(make_request(tmp_path / "out", vm="web01", resource_group="rg-gone")), arm.login())


def test_wrong_secret_is_refused_at_once_and_never_shown(arm, web01, make_request, tmp_path, caplog):
    wrong = "wrong~secret~value~never-log-this"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AccessDeniedError) as raised:
        export_vm(preflight(make_request(tmp_path / "out", vm="web01")), arm.login(client_secret=wrong))
    message = str(raised.value)
    assert "refused the service principal's sign-in (AADSTS7000215)" in message and "client secret" in message
    assert raised.value.field == "credentials_block"
    assert arm.token_requests == 1, "a refused secret was retried"
    assert arm.tagged_snapshots() == set()
    for text in (message, caplog.text):
        assert wrong not in text and CLIENT_SECRET not in text


def test_wrong_tenant(arm, web01, make_request, tmp_path):
    with pytest.raises(AccessDeniedError, match=r"sign-in \(the authority does not know this tenant\). Check the tenant id"):
        export_vm(preflight(make_request(tmp_path / "out", vm="web01")), arm.login(tenant_id="99999999-0000-0000-0000-000000000000"))


def test_missing_role_names_the_action_and_cleans_up(arm, web01, make_request, tmp_path):
    arm.deny("Microsoft.Compute/snapshots/beginGetAccess/action")
    with pytest.raises(AccessDeniedError) as raised:
        run_migration(make_request(tmp_path / "out", vm="web01"), credentials=arm.login())
    message = str(raised.value)
    assert "no role assignment that allows the action Microsoft.Compute/snapshots/beginGetAccess/action" in message
    assert "Assign it a role" in message
    assert arm.snapshot_ids() == set() and arm.open_grants() == set()  # the failed run's snapshots are gone


def test_throttling_is_retried_after_retry_after(arm, web01, make_request, tmp_path):
    arm.throttle("Microsoft.Compute/virtualMachines/read", times=1)
    request = make_request(tmp_path / "out", vm="web01")
    export = export_vm(preflight(request), arm.login())
    try:
        assert arm.count("Microsoft.Compute/virtualMachines/read") == 2
        assert len(export.disks) == 2
    finally:
        _cleanup(request, export, arm.login())


def test_grant_expired_mid_download_is_renewed_and_resumed(arm, web01, os_raw, data_raw, make_request, tmp_path):
    proxy = arm.azurite.proxy

    def expire_at(number: int) -> None:
        if number == 3:  # every grant open now expires: the reads after this one are refused
            for grant in list(arm.grants.values()):
                arm.azurite.revoke(grant.sas)

    proxy.hook = expire_at
    report = run_migration(make_request(tmp_path / "out", vm="web01"), credentials=arm.login())

    assert report.success and proxy.refused >= 1
    assert arm.grants_made == 3, "the expired grant was not renewed exactly once"
    for raw, output in zip((os_raw, data_raw), report.conversion.converted_files):
        assert_identical(raw, "raw", output)
    # Nothing fetched twice: the bytes served are the written ranges, the refused read carried none.
    written = sum(arm.azurite.written_bytes("disks", f"{RG}-{d}", r.stat().st_size)
                  for d, r in (("web01-os", os_raw), ("web01-data", data_raw)))  # fmt: skip
    served = sum(end - start + 1 for path, start, end, _ in proxy.ranges if "/snapshots/" in path and end - start + 1 != 512)
    assert served == written
    assert arm.open_grants() == set() and arm.snapshot_ids() == set()


def test_ultra_disk_needs_incremental_snapshots(arm, os_raw, make_request, tmp_path):
    os_disk = arm.add_disk(RG, "fast01-os", os_raw, os_type="Linux", sku="UltraSSD_LRS")
    arm.add_vm(RG, "fast01", os_disk, [])
    with pytest.raises(InvalidInputError) as raised:
        export_vm(preflight(make_request(tmp_path / "out", vm="fast01")), arm.login())
    assert "is an Ultra Disk (UltraSSD_LRS): Azure takes only incremental snapshots" in str(raised.value)
    assert "incremental=true" in str(raised.value) and raised.value.field == "source.incremental"
    assert arm.count("Microsoft.Compute/snapshots/write") == 0

    request = make_request(tmp_path / "out", vm="fast01", incremental=True)
    export = export_vm(preflight(request), arm.login())
    try:
        assert len(export.disks) == 1
        assert all(s["properties"]["incremental"] for s in arm.snapshots.values())
    finally:
        _cleanup(request, export, arm.login())
    assert arm.snapshot_ids() == set()
