"""The datastore method against vcsim: snapshot, ranged /folder reads with the session cookie, CBT, metadata,
clean-up."""

from __future__ import annotations

import json
import logging

import pytest
from support.vsphere_inventory import MiB, snapshot_names
from secrets_scan import assert_password_never_shown, run_texts
from support.migrate import assert_identical

from hyperexport.migration import run_migration


def test_running_vm_with_two_disks_migrates_boot_disk_first(vcsim, login, web01, root_raw, data_raw, make_request, tmp_path,
                                                            caplog):  # fmt: skip
    with caplog.at_level(logging.DEBUG):  # every logger, every level: pyVmomi's and httpx's included
        report = run_migration(make_request(tmp_path / "out", vm=web01.name), credentials=login)

    assert report.success
    outputs = report.conversion.converted_files
    assert len(outputs) == 2
    assert_identical(root_raw, "raw", outputs[0])  # the boot disk first, though it is on scsi0:1
    assert_identical(data_raw, "raw", outputs[1])
    assert snapshot_names(web01) == [], "the run's snapshot is still there"
    assert f"[LocalDS_0] {web01.name}/{web01.extents[1].name}: CBT is off on the VM: reading the whole disk" in caplog.messages
    assert_password_never_shown([("log", r.getMessage()) for r in caplog.records] + run_texts(None, tmp_path / "out"))
    manifest = json.loads(report.manifest_path.read_text())
    assert manifest["vm"] == {"cpu": 2, "mem_gb": 4, "firmware": "uefi", "secureboot": True, "os_hint": "debian11_64Guest"}
    assert [(n["mac"], n["network"]) for n in manifest["nics"]] == [
        ("00:50:56:aa:bb:01", "VM Network"), ("00:50:56:aa:bb:02", "DC0_DVPG0")]
    assert [d["disk_type"] for d in manifest["disks"]] == ["boot", "data"]
    # Every byte came through /folder ranged reads that carried the session cookie (the extension answers 401 otherwise).
    served = vcsim.folder_bytes()
    extent = f"/folder/{web01.name}/{web01.extents[1].name}"
    assert served[extent] >= root_raw.stat().st_size
    ranged = [r for r in vcsim.folder_requests() if r.startswith(f"GET {extent} bytes=")]
    assert len(ranged) >= root_raw.stat().st_size // (16 * MiB), ranged  # one request per 16 MiB range, 8 at once


def test_with_cbt_only_the_allocated_areas_are_read(vcsim, login, make_vm_in, root_raw, data_raw, make_request, tmp_path,
                                                    caplog):  # fmt: skip
    from support.vsphere_inventory import Disk

    vm = make_vm_in([Disk(root_raw, 0, 0), Disk(data_raw, 0, 1)], cbt=True)
    # What make_base_raw wrote: five 256 KiB extents and the end marker; CBT reports them, MiB-aligned as ESXi does.
    size = root_raw.stat().st_size
    root_areas = [(0, MiB), (size // 8, MiB), (size // 3 // MiB * MiB, 2 * MiB), (size // 2, MiB), (size - 2 * MiB, 2 * MiB)]
    vcsim.set_areas(vm.moid, vm.disk_keys[0], root_areas)
    vcsim.set_areas(vm.moid, vm.disk_keys[1], [(0, data_raw.stat().st_size)])

    with caplog.at_level(logging.INFO, logger="hyperexport.providers.vsphere"):
        report = run_migration(make_request(tmp_path / "out", vm=vm.name), credentials=login)

    assert report.success
    allocated = sum(length for _, length in root_areas)
    assert (f"[LocalDS_0] {vm.name}/{vm.extents[0].name}: CBT lists 5 allocated area(s), {allocated} of {size} bytes: "
            "only those are read") in caplog.messages
    assert_identical(root_raw, "raw", report.conversion.converted_files[0])
    assert_identical(data_raw, "raw", report.conversion.converted_files[1])
    served = vcsim.folder_bytes()
    assert served[f"/folder/{vm.name}/{vm.extents[0].name}"] == sum(length for _, length in root_areas)
    assert report.disks[0].bytes_fetched == sum(length for _, length in root_areas)


def test_an_interrupted_download_resumes_from_the_same_snapshot(vcsim, login, web01, root_raw, make_request, tmp_path):
    from support.migrate import assert_identical as identical

    from hyperexport import cancel, migration
    from hyperexport.errors import CancelledError

    request = make_request(tmp_path / "out", vm=web01.name, export={"keep_cloud_artifacts": True, "connections": 1,
                                                                          "bandwidth_limit_bps": 32 * MiB})
    export = migration.export_vm(migration.preflight(request), login)

    def interrupt(current, total, *_):
        if current >= 24 * MiB:  # past the first 16 MiB range
            cancel.request_cancel()

    try:
        with pytest.raises(CancelledError):
            migration.stage(migration.preflight(request), export, 0, credentials=login, progress=interrupt)
    finally:
        cancel.reset()
    first = vcsim.folder_bytes()[f"/folder/{web01.name}/{web01.extents[1].name}"]
    staged = migration.stage(migration.preflight(request), export, 0, credentials=login)

    size = root_raw.stat().st_size
    assert 0 < staged.bytes_fetched < size and first + staged.bytes_fetched <= size + 16 * MiB, (first, staged.bytes_fetched)
    identical(root_raw, "raw", staged.path, "raw")
    assert migration.cleanup(migration.preflight(make_request(tmp_path / "out", vm=web01.name)), export, login) == export.created_resources


def test_cbt_areas_unaligned_or_too_many_are_refused(vcsim, login, make_vm_in, data_raw, make_request, tmp_path):
    from support.vsphere_inventory import Disk, task

    from hyperexport.errors import UnsafeImageError
    from hyperexport.providers.vsphere.datastore import allocated_areas

    vm = make_vm_in([Disk(data_raw, 0, 0)], cbt=True)
    vcsim.set_areas(vm.moid, vm.disk_keys[0], [(0, MiB), (4 * MiB + 100, 4096)])
    with pytest.raises(UnsafeImageError) as raised:
        run_migration(make_request(tmp_path / "out", vm=vm.name), credentials=login)
    assert f"CBT answered an area [{4 * MiB + 100}, +4096) for disk {vm.disk_keys[0]} that is not 512-byte aligned" in str(
        raised.value)  # fmt: skip
    assert snapshot_names(vm) == []

    vcsim.set_areas(vm.moid, vm.disk_keys[0], [(i * MiB, 4096) for i in range(4)])
    snapshot = task(vm.vm.CreateSnapshot_Task(name="cbt-probe", description="", memory=False, quiesce=False))
    size = data_raw.stat().st_size
    assert len(allocated_areas(vm.vm, snapshot, vm.disk_keys[0], size, max_areas=4)) == 4
    with pytest.raises(UnsafeImageError, match=f"CBT lists more than 3 areas for disk {vm.disk_keys[0]}"):
        allocated_areas(vm.vm, snapshot, vm.disk_keys[0], size, max_areas=3)
