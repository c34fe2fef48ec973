"""An instance with a boot and a data disk migrates through the export worker and Cloud Storage."""

from __future__ import annotations

import json

from support.gcp_compute import MACHINE_TYPES
from support.migrate import assert_identical

from hyperexport.migration import export_vm, preflight, run_migration


def test_instance_migrates_boot_disk_first_with_crc32c_verified(gce, web01, login, boot_raw, data_raw, make_request, tmp_path):
    before = gce.inventory()
    request = make_request(tmp_path / "out", instance="web01", export={"keep_cloud_artifacts": False})

    report = run_migration(request, credentials=login)

    assert report.success, report
    outputs = report.conversion.converted_files
    assert [p.name for p in outputs] == ["disk-0.qcow2", "disk-1.qcow2"]
    assert_identical(boot_raw, "raw", outputs[0])  # the boot disk first, though the instance lists the data disk first
    assert_identical(data_raw, "raw", outputs[1])
    saved = json.loads((tmp_path / "out" / "migration-report.json").read_text())
    assert saved["provider"] == "gcp" and saved["export_method"] == "export-worker"
    assert gce.inventory() == before, "the run left something behind, or removed what was there"
    assert gce.count("GET", r"/operations/") > 0, "operations were not polled through the operations clients"


def test_snapshots_labelled_all_before_the_worker_and_worker_shape(gce, web01, login, make_request, tmp_path):
    request = make_request(tmp_path / "out", instance="web01", guest_flush=True, export={"keep_cloud_artifacts": True})

    result = export_vm(preflight(request), login, run_id="shape-run")

    snapshots = sorted(r.id for r in result.created_resources if r.kind == "snapshot")
    assert len(snapshots) == 2
    assert all(gce.snapshots[s]["labels"]["hyperexport-run-id"] == "shape-run" for s in snapshots)
    assert all(gce.snapshots[s]["_guest_flush"] for s in snapshots)
    paths = [c.path for c in gce.calls if c.method == "POST"]
    snaps = [i for i, p in enumerate(paths) if p.endswith("/createSnapshot")]
    inserts = [i for i, p in enumerate(paths) if p.endswith("/disks") or p.endswith("/instances")]
    assert max(snaps) < min(inserts), "an export step started before every disk was snapshotted"
    assert [c.path.rsplit("/", 2)[-2] for c in gce.calls if c.path.endswith("/createSnapshot")] == ["web01", "web01-data"]
    worker = next(c.body for c in gce.calls if c.method == "POST" and c.path.endswith("/instances"))
    assert worker["machineType"].endswith("/e2-small")
    assert "accessConfigs" not in worker["networkInterfaces"][0], "the worker got an external IP"
    assert worker["labels"]["hyperexport-run-id"] == "shape-run"
    assert worker["disks"][0]["initializeParams"]["sourceImage"].endswith("/debian-cloud/global/images/debian-12-bookworm-v20260101")
    assert [d["mode"] for d in worker["disks"][1:]] == ["READ_ONLY", "READ_ONLY"]
    assert int(worker["scheduling"]["maxRunDuration"]["seconds"]) > 0
    # The worker and the temporary disks are gone at once, kept or not; the snapshots and the objects stay.
    assert {kind for kind, _ in gce.labelled("shape-run")} == {"snapshot"}
    objects = {r.id for r in result.created_resources if r.kind == "gcs-prefix"}
    assert objects == {"hx-exports/hyperexport/shape-run/"}
    assert [d.location for d in result.disks] == ["gs://hx-exports/hyperexport/shape-run/web01.qcow2",
                                                  "gs://hx-exports/hyperexport/shape-run/web01-data.qcow2"]  # fmt: skip


def test_metadata_from_machine_type_firmware_licenses_and_nics(gce, web01, login, make_request, tmp_path):
    result = export_vm(preflight(make_request(tmp_path / "out", instance="web01")), login, run_id="meta-run")

    vm = result.vm
    assert (vm.cpu, vm.mem_gb) == (MACHINE_TYPES["n2-standard-4"][0], MACHINE_TYPES["n2-standard-4"][1] / 1024)
    assert vm.firmware.value == "uefi" and vm.secureboot is True
    assert vm.os_hint == "debian"
    assert [(n.id, n.network, n.mac) for n in vm.nics] == [("nic0", "default", None), ("nic1", "backend", None)]
    assert "derives NIC MAC addresses" in result.metadata["nic_macs"]
    assert [d.disk_type.value for d in result.disks] == ["boot", "data"]
