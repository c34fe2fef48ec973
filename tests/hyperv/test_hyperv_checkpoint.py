"""The checkpoint method, engine level: a two-disk VM to two qcow2 disks, boot disk first, the checkpoint gone."""

from __future__ import annotations

import json

from support.hyperv_lab import SECRETS
from support.migrate import assert_identical

from hyperexport import migration


def test_two_disks_migrate_through_a_checkpoint_boot_disk_first(hyperv, make_request, tmp_path, caplog):
    request = make_request(tmp_path / "out", vm="web01")

    report = migration.run_migration(request, credentials=hyperv.login())

    assert report.success and report.export_method == "checkpoint"
    outputs = report.conversion.converted_files
    assert [p.name for p in outputs] == ["disk-0.qcow2", "disk-1.qcow2"]
    assert_identical(hyperv.boot_raw, "raw", outputs[0])  # the boot disk first, though listed second by the host
    assert_identical(hyperv.data_raw, "raw", outputs[1])
    assert [d.format.value for d in report.disks] == ["vhdx", "vhdx"]
    manifest = json.loads(report.manifest_path.read_text())
    assert [d["source_format"] for d in manifest["disks"]] == ["vhdx", "vhdx"]
    assert manifest["vm"] == {"cpu": 2, "mem_gb": 4, "firmware": "uefi", "secureboot": True}
    assert manifest["nics"] == [{"id": "nic-0", "mac": "00:15:5d:01:02:03", "network": "External"},
                                {"id": "nic-1", "mac": "00:15:5d:0a:0b:0c", "network": "Private"}]  # fmt: skip
    assert hyperv.checkpoints() == [], "the run's checkpoint was not removed"
    web01 = next(vm for vm in hyperv.host.vms if vm.name == "web01")
    assert web01.checkpoint_type == "Production" and all(d.path.endswith(".vhdx") for d in web01.disks)
    for text in [report.model_dump_json(), caplog.text, *(p.read_text() for p in (tmp_path / "out").glob("*.json"))]:
        for secret in SECRETS:
            assert secret not in text
