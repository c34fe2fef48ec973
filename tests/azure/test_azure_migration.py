"""Azure VMs migrated by the engine against Azurite and the local Resource Manager: disk content, bytes read,
and what is left at the source after a success, a failure and a cancellation mid-download."""

from __future__ import annotations

import logging
import re

import pytest
from support.azure_arm import CLIENT_SECRET, RG
from support.azure_storage import MiB
from support.migrate import assert_identical

from hyperexport import cancel
from hyperexport.errors import CancelledError, SourceNotFoundError
from hyperexport.manifest import load_manifest
from hyperexport.migration import preflight, run_migration
from hyperexport.models.export import Firmware



def test_vm_migrates_os_disk_first_reading_only_the_written_ranges(arm, web01, os_raw, data_raw, make_request, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)  # azure-core, azure-identity and msal log every request at this level
    disks_before = {k: dict(v) for k, v in arm.disks.items()}
    report = run_migration(make_request(tmp_path / "out", vm="web01"), credentials=arm.login())

    assert report.success
    outputs = report.conversion.converted_files
    assert [p.name for p in outputs] == ["disk-0.qcow2", "disk-1.qcow2"]
    assert_identical(os_raw, "raw", outputs[0])  # OS disk first: and the VHD footer is not inside the disk
    assert_identical(data_raw, "raw", outputs[1])

    # Bytes the engine read from storage: the written page ranges of each disk, not its size.
    proxy = arm.azurite.proxy
    for raw, disk in ((os_raw, "web01-os"), (data_raw, "web01-data")):
        snapshot_blob = f"/devstoreaccount1/snapshots/{RG}-hx-".lower()
        served = sum(end - start + 1 for path, start, end, _ in proxy.ranges
                     if path.startswith(snapshot_blob) and path.endswith(disk) and end < raw.stat().st_size)  # fmt: skip
        written = arm.azurite.written_bytes("disks", f"{RG}-{disk}", raw.stat().st_size)
        assert served == written < raw.stat().st_size // 2, (disk, served, written)
    data_reads = [(start, end, md5) for path, start, end, md5 in proxy.ranges if "/snapshots/" in path and end - start + 1 != 512]
    assert data_reads and all(md5 and end - start + 1 <= 4 * MiB for start, end, md5 in data_reads), data_reads

    manifest = load_manifest(report.manifest_path)
    vm = manifest.vm
    assert (report.vm_name, vm.cpu, vm.mem_gb, vm.firmware, vm.secureboot) == ("web01", 2, 8, "uefi", True)
    assert vm.os_hint.startswith("linux") and [n.mac for n in manifest.nics] == ["00:0d:3a:aa:bb:01"]

    # Every grant revoked, every snapshot of the run deleted, the disks untouched.
    assert arm.grants_made == 2 and arm.count("Microsoft.Compute/snapshots/endGetAccess/action") >= 2
    assert arm.open_grants() == set() and arm.snapshot_ids() == set()
    assert arm.disks == disks_before

    # The client secret is in no log line, no output file, and no SAS signature either.
    signatures = [g for g in re.findall(r"sig=([^&\s'\"]+)", caplog.text) if g != "REDACTED"]
    assert CLIENT_SECRET not in caplog.text and not signatures, signatures[:3]
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file() and path.suffix in (".json", ".xml", ".yaml", ".log", ".txt"):
            assert CLIENT_SECRET not in path.read_text(errors="replace") and "sig=" not in path.read_text(errors="replace"), path


def test_data_disks_come_by_lun_whatever_the_model_order(arm, os_raw, data_raw, make_request, tmp_path):
    os_disk = arm.add_disk(RG, "db01-os", os_raw, os_type="Linux")
    lun3 = arm.add_disk(RG, "db01-lun3", os_raw)
    lun1 = arm.add_disk(RG, "db01-lun1", data_raw)
    arm.add_vm(RG, "db01", os_disk, [(3, lun3), (1, lun1)], trusted_launch=False, size="Standard_D4s_v3")

    from hyperexport.migration import export_vm
    from hyperexport.providers import lifecycle
    from hyperexport.providers.registry import get_provider

    request = make_request(tmp_path / "out", vm="db01")
    export = export_vm(preflight(request), arm.login())
    try:
        assert [d.label for d in export.disks] == ["db01-os", "db01-lun1 (LUN 1)", "db01-lun3 (LUN 3)"]
        assert [d.disk_type.value for d in export.disks] == ["boot", "data", "data"]
        assert (export.vm.cpu, export.vm.mem_gb, export.vm.firmware, export.vm.secureboot) == (4, 16.0, Firmware.uefi, None)
        assert len(arm.tagged_snapshots()) == 3
    finally:
        provider = get_provider("azure")
        lifecycle.cleanup(provider, export, provider.parse(request.source), arm.login())
    assert arm.snapshot_ids() == set() and arm.open_grants() == set()


def _leaves_nothing_behind(arm, before_snapshots, disks_before) -> None:
    assert arm.open_grants() == set(), "a grant was left open"
    assert arm.snapshot_ids() == before_snapshots, "the run's snapshots were not deleted (or others were)"
    assert arm.disks == disks_before


@pytest.fixture
def existing_snapshot(arm, os_raw):
    """A snapshot that existed before the run: it must be left alone."""
    return arm.add_snapshot(RG, "nightly-backup", os_raw)


def test_failure_mid_download_revokes_and_deletes(arm, web01, existing_snapshot, make_request, tmp_path):
    before, disks_before = arm.snapshot_ids(), {k: dict(v) for k, v in arm.disks.items()}
    arm.azurite.proxy.hook = lambda number: 404 if number == 3 else None  # the blob vanishes mid-download

    with pytest.raises(SourceNotFoundError):
        run_migration(make_request(tmp_path / "out", vm="web01"), credentials=arm.login())

    assert arm.azurite.proxy.data_gets >= 3
    assert before == {existing_snapshot}
    _leaves_nothing_behind(arm, before, disks_before)


def test_cancel_mid_download_revokes_and_deletes(arm, web01, existing_snapshot, make_request, tmp_path):
    before, disks_before = arm.snapshot_ids(), {k: dict(v) for k, v in arm.disks.items()}

    def cancel_at(number: int) -> None:
        if number == 2:
            cancel.request_cancel()

    arm.azurite.proxy.hook = cancel_at
    try:
        with pytest.raises(CancelledError):
            run_migration(make_request(tmp_path / "out", vm="web01"), credentials=arm.login())
    finally:
        cancel.reset()
    _leaves_nothing_behind(arm, before, disks_before)


def test_cleanup_run_revokes_open_grants_and_deletes_only_that_runs_snapshots(arm, web01, existing_snapshot, make_request, tmp_path):
    from hyperexport.migration import cleanup_run, export_vm
    from hyperexport.providers.registry import get_provider

    login = arm.login()
    request = make_request(tmp_path / "out", vm="web01", export={"keep_cloud_artifacts": True})
    export = export_vm(preflight(request), login, run_id="given-up-run")
    # A worker died mid-download: its grant is still open.
    source = get_provider("azure").open_disk(export.disks[0], get_provider("azure").parse(request.source), login)
    source.describe()
    assert len(arm.open_grants()) == 1 and len(arm.snapshot_ids()) == 3

    removed = cleanup_run("azure", request.source, "given-up-run", login)

    assert {r.id for r in removed} == {r.id for r in export.created_resources}
    assert arm.open_grants() == set() and arm.snapshot_ids() == {existing_snapshot}


def test_a_managed_disk_id_or_a_snapshot_id_migrates(arm, web01, existing_snapshot, os_raw, data_raw, make_request, tmp_path):
    disks_before = {k: dict(v) for k, v in arm.disks.items()}
    by_disk = run_migration(make_request(tmp_path / "disk", disk_id=web01.data_disk), credentials=arm.login())
    assert_identical(data_raw, "raw", by_disk.conversion.converted_files[0])
    assert arm.snapshot_ids() == {existing_snapshot}  # the run's own snapshot is gone

    by_snapshot = run_migration(make_request(tmp_path / "snap", snapshot_id=existing_snapshot), credentials=arm.login())
    assert_identical(os_raw, "raw", by_snapshot.conversion.converted_files[0])
    # A snapshot the run was given is read, its grant revoked, and the snapshot kept.
    assert arm.snapshot_ids() == {existing_snapshot} and arm.open_grants() == set()
    assert arm.count("Microsoft.Compute/snapshots/write") == 1 and arm.disks == disks_before
