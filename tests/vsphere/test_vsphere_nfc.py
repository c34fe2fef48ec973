"""The nfc method against vcsim's ExportVm extension: the lease kept alive past its timeout, completed on
success, aborted on a failure mid-download; the OVF descriptor beside the disks; a running VM refused."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from support.migrate import assert_identical
from support.vsphere_inventory import Disk, lay_nfc_exports

from hyperexport.errors import AccessDeniedError, InvalidInputError, TransferError
from hyperexport.migration import run_migration


@pytest.fixture
def stopped01(make_vm_in, root_raw, data_raw):
    made = make_vm_in([Disk(data_raw, 0, 0), Disk(root_raw, 0, 1, boot=True)], power_on=False)
    made.exports = lay_nfc_exports(made, [data_raw, root_raw])
    return made


def test_powered_off_vm_migrates_with_the_lease_kept_alive_past_its_timeout(vcsim, login, stopped01, root_raw, data_raw,
                                                                           make_request, tmp_path):  # fmt: skip
    total = sum(p.stat().st_size for p in stopped01.exports)
    vcsim.set_nfc(lease_timeout=2, rate=total // 4)  # the downloads take about 4 s, the lease lives 2 s unrenewed

    report = run_migration(make_request(tmp_path / "out", vm=stopped01.name, export_method="nfc"), credentials=login)

    assert report.success
    assert_identical(root_raw, "raw", report.conversion.converted_files[0])  # the boot disk first
    assert_identical(data_raw, "raw", report.conversion.converted_files[1])
    (lease,) = vcsim.leases().values()
    assert lease["vm"] == stopped01.moid and lease["state"] == "complete", lease
    assert "expired" not in lease["events"] and lease["events"][-1] == "complete"
    assert sum(e.startswith("progress") for e in lease["events"]) >= 6, lease["events"]
    ovf = tmp_path / "out" / "nfc" / f"{stopped01.name}.ovf"
    root = ET.parse(ovf).getroot()
    ns = {"ovf": "http://schemas.dmtf.org/ovf/envelope/1"}
    hrefs = [f.get(f"{{{ns['ovf']}}}href") for f in root.findall("ovf:References/ovf:File", ns)]
    assert hrefs == [f"{stopped01.name}-disk-0.vmdk", f"{stopped01.name}-disk-1.vmdk"]
    assert all((ovf.parent / href).is_file() for href in hrefs)


def test_failure_mid_download_aborts_the_lease(vcsim, login, stopped01, make_request, tmp_path):
    vcsim.set_nfc(fail_after=64 * 1024)

    with pytest.raises(TransferError) as raised:
        run_migration(make_request(tmp_path / "out", vm=stopped01.name, export_method="nfc"), credentials=login)

    assert "the NFC download broke off after" in str(raised.value)
    (lease,) = vcsim.leases().values()
    assert lease["state"] == "abort" and "complete" not in lease["events"], lease


def test_running_vm_is_refused_naming_the_datastore_method(vcsim, login, web01, make_request, tmp_path):
    with pytest.raises(InvalidInputError) as raised:
        run_migration(make_request(tmp_path / "out", vm=web01.name, export_method="nfc"), credentials=login)

    assert raised.value.field == "source.export_method"
    assert f"VM /DC0/vm/{web01.name} is poweredOn: the nfc export method (ExportVm) takes powered-off VMs only" in str(raised.value)
    assert "use the datastore export method" in str(raised.value)
    assert vcsim.leases() == {}


def test_a_refused_lease_gives_its_message(vcsim, login, stopped01, make_request, tmp_path):
    vcsim.inject_fault("ExportVm", "FileFault", object=stopped01.moid, message="disk locked by another export")

    with pytest.raises(InvalidInputError) as raised:
        run_migration(make_request(tmp_path / "out", vm=stopped01.name, export_method="nfc"), credentials=login)

    assert str(raised.value) == (f"vSphere refused starting the NFC export of VM {stopped01.moid} (FileFault): "
                                 "disk locked by another export")


def test_a_lost_lease_is_reported_not_the_download_it_broke(vcsim, login, stopped01, make_request, tmp_path):
    vcsim.set_nfc(lease_timeout=1, rate=1024 * 1024, fail_after=1024 * 1024)  # the keep-alive fails at 0.25 s, the download at 1 s
    vcsim.inject_fault("HttpNfcLeaseProgress", "NoPermission", privilege="VApp.Export")

    with pytest.raises(AccessDeniedError) as raised:
        run_migration(make_request(tmp_path / "out", vm=stopped01.name, export_method="nfc"), credentials=login)

    assert "vSphere denied keeping the NFC lease alive: the user lacks the privilege VApp.Export" in str(raised.value)
    (lease,) = vcsim.leases().values()
    assert lease["state"] == "abort", lease
