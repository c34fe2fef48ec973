"""What an answer of Azure cannot make the provider do: send its token elsewhere, lose track of what it made."""

from __future__ import annotations

import pytest
from support.azure_arm import RG, ForeignHost, rid

from hyperexport.errors import IntegrityError, InvalidInputError, PermanentError, TransferError
from hyperexport.migration import export_vm, preflight, run_migration
from hyperexport.providers.azure.clients import make_context
from hyperexport.providers.azure.options import parse_resource_id
from hyperexport.providers.azure.pageblob import PageBlobSource


def test_operation_url_on_another_host_gets_no_request_and_fails_permanently(arm, web01, make_request, tmp_path):
    with ForeignHost(arm.ca) as foreign:
        arm.operations_base = foreign.url
        with pytest.raises(PermanentError) as raised:
            export_vm(preflight(make_request(tmp_path / "out", vm="web01")), arm.login())
    assert foreign.requests == []
    assert isinstance(raised.value, InvalidInputError)
    message = str(raised.value)
    assert f"pointed a request at another host, {foreign.url.removeprefix('https://')}; it was not sent" in message
    assert "Check resource_manager_endpoint" in message


def test_snapshot_created_by_a_failed_put_is_rolled_back(arm, web01, make_request, tmp_path):
    arm.fail_after_create = True  # Azure made the snapshot, then answered 500 to every retry
    with pytest.raises(TransferError, match=r"creating snapshot hx-.* of disk web01-os: Azure answered 500 InternalServerError"):
        run_migration(make_request(tmp_path / "out", vm="web01"), credentials=arm.login())
    assert arm.count("Microsoft.Compute/snapshots/write") > 1  # azure-core retried it
    assert arm.snapshot_ids() == set() and arm.open_grants() == set()


def test_sas_over_plain_http_to_a_remote_host_is_refused(arm, web01, make_request, tmp_path):
    arm.sas_host = "storage.example"
    with pytest.raises(IntegrityError, match=r"granting read access to snapshot hx-.*: Azure answered a SAS URL over plain "
                       r"http \(host storage.example\); refused, its signature would travel in clear"):
        run_migration(make_request(tmp_path / "out", vm="web01"), credentials=arm.login())
    assert arm.snapshot_ids() == set() and arm.open_grants() == set()


def test_grant_that_failed_mid_way_is_revoked_on_close(arm, os_raw):
    snapshot = parse_resource_id(arm.add_snapshot(RG, "snap-kept", os_raw), "snapshots", "source.snapshot_id")
    source = PageBlobSource(make_context(arm.login()), snapshot, disk_size=None, grant_seconds=3600, poll_seconds=0.01)
    arm.sas_host = "storage.example"  # Azure opens the grant, then its answer is refused
    with pytest.raises(IntegrityError, match="SAS URL over plain http"):
        source.describe()
    assert arm.open_grants() == {f"{RG}/snap-kept"}
    source.close()
    assert arm.open_grants() == set()
    assert arm.snapshot_ids() == {rid(RG, "snapshots", "snap-kept")}  # a snapshot not made by the run is kept


def _page_list(ranges: int, marker: str) -> bytes:
    pages = "".join(f"<PageRange><Start>{i * 1024}</Start><End>{i * 1024 + 511}</End></PageRange>" for i in range(ranges))
    return f'<?xml version="1.0" encoding="utf-8"?><PageList>{pages}<NextMarker>{marker}</NextMarker></PageList>'.encode()


@pytest.mark.parametrize(("ranges", "message"), [
    (2, "repeated a continuation marker"),
    (40000, r"listed more than 32770 ranges for a blob of 16777728 bytes"),
])
def test_page_range_listing_without_end_is_refused(arm, os_raw, ranges, message):
    snapshot = parse_resource_id(arm.add_snapshot(RG, "snap-pages", os_raw), "snapshots", "source.snapshot_id")
    source = PageBlobSource(make_context(arm.login()), snapshot, disk_size=None, grant_seconds=3600, poll_seconds=0.01)
    arm.azurite.proxy.page_list = _page_list(ranges, "same-marker")
    try:
        with pytest.raises(IntegrityError, match=message):
            source.describe()
    finally:
        source.close()


@pytest.mark.parametrize(("status", "error"), [(400, InvalidInputError), (409, InvalidInputError)])
def test_storage_refusal_is_permanent_unless_worth_a_retry(arm, os_raw, status, error):
    snapshot = parse_resource_id(arm.add_snapshot(RG, "snap-status", os_raw), "snapshots", "source.snapshot_id")
    source = PageBlobSource(make_context(arm.login()), snapshot, disk_size=None, grant_seconds=3600, poll_seconds=0.01)
    arm.azurite.proxy.page_list = (b'<?xml version="1.0" encoding="utf-8"?><Error><Code>InvalidHeaderValue</Code>'
                                   b'<Message>The value for one of the HTTP headers is not in the correct format.</Message></Error>')
    arm.azurite.proxy.page_list_status = status
    try:
        with pytest.raises(error, match=rf"listing the page ranges of azure snapshot snap-status .*: Azure Storage refused the request \({status}\); a retry would not") as raised:
            source.describe()
        assert type(raised.value) is error
    finally:
        source.close()


def test_blob_too_short_for_a_footer_is_refused(arm, tmp_path):
    empty = tmp_path / "empty.raw"
    empty.touch()
    snapshot = parse_resource_id(arm.add_snapshot(RG, "snap-short", empty), "snapshots", "source.snapshot_id")
    source = PageBlobSource(make_context(arm.login()), snapshot, disk_size=None, grant_seconds=3600, poll_seconds=0.01)
    try:
        with pytest.raises(IntegrityError, match=r"azure snapshot snap-short \(rg-web\) is 512 bytes long: not a fixed VHD"):
            source.describe()
    finally:
        source.close()
