import json
from pathlib import Path

import pytest
from hyper2kvm.manifest.loader import ManifestLoader

from hyperexport.errors import ManifestError, ProviderDetectionError
from hyperexport.manifest import MANIFEST_FILE_NAME, build_manifest, detect_provider, load_manifest, write_manifest
from hyperexport.models import DiskFormat, DiskType, ExportResult, StagedDisk, VmInfo
from hyperexport.models.export import Firmware, NicInfo
from hyperexport.models.provider_name import PROVIDER_NAMES


def _export(tmp_path: Path, provider: str = "local") -> tuple[ExportResult, list[StagedDisk]]:
    disk = tmp_path / "d.raw"
    disk.write_bytes(b"\0" * 4096)
    export = ExportResult(
        provider=provider,
        export_method="local-file",
        vm=VmInfo(vm_id="vm-1", vm_name="web01", cpu=2, mem_gb=3.6, firmware=Firmware.uefi, os_hint="linux",
                  nics=[NicInfo(id="nic0", mac="00:50:56:aa:bb:cc", network="VM Network")]),
        disks=[{"id": "disk-0", "location": str(disk), "format": "raw", "file_name": "d.raw"}],
    )
    staged = [StagedDisk(id="disk-0", path=disk, format=DiskFormat.raw, size_bytes=4096, virtual_size_bytes=4096,
                         sha256="sha256:" + "a" * 64, disk_type=DiskType.boot)]
    return export, staged


def test_written_manifest_is_accepted_by_hyper2kvms_own_loader(tmp_path):
    export, staged = _export(tmp_path)
    path = write_manifest(build_manifest(export, staged, output_dir=tmp_path / "out"), tmp_path)
    assert path.name == MANIFEST_FILE_NAME
    loaded = ManifestLoader().load(path)
    assert loaded["manifest_version"] == "1.0"
    assert loaded["source"]["provider"] == "local"
    assert loaded["vm"] == {"cpu": 2, "mem_gb": 4, "firmware": "uefi", "secureboot": False, "os_hint": "linux"}
    assert loaded["nics"] == [{"id": "nic0", "mac": "00:50:56:aa:bb:cc", "network": "VM Network"}]
    assert all(loaded["pipeline"][stage] == {"enabled": False} for stage in ("inspect", "fix", "convert", "validate"))
    assert loaded["disks"][0]["checksum"] == "sha256:" + "a" * 64


def test_provider_is_read_from_parsed_json_not_from_text(tmp_path):
    export, staged = _export(tmp_path, provider="local")
    export.vm.vm_name = '"provider":"aws"'  # a substring search would say aws
    path = write_manifest(build_manifest(export, staged), tmp_path)
    assert detect_provider(path) == "local"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"provider": "openstack"}, "names provider 'openstack'"),
        ({}, "has no source.provider"),
    ],
)
def test_unknown_or_missing_provider_names_value_and_accepted_ones(tmp_path, source, message):
    path = tmp_path / MANIFEST_FILE_NAME
    path.write_text(json.dumps({"manifest_version": "1.0", "source": source, "disks": []}))
    with pytest.raises(ProviderDetectionError) as raised:
        detect_provider(path)
    assert message in str(raised.value)
    # Every provider hyperexport knows (the registry's order), among them the two built in.
    assert f"expected one of: {', '.join(PROVIDER_NAMES)}" in str(raised.value)
    assert {"local", "aws"} <= set(PROVIDER_NAMES)


def test_manifest_breaking_the_schema_names_the_field(tmp_path):
    path = tmp_path / MANIFEST_FILE_NAME
    path.write_text(json.dumps({"manifest_version": "1.0", "source": {"provider": "local"},
                                "disks": [{"id": "bad id!", "source_format": "vpc", "bytes": 1, "local_path": "/x"}]}))
    with pytest.raises(ManifestError) as raised:
        load_manifest(path)
    assert "disks.0.id" in str(raised.value) and "disks.0.source_format" in str(raised.value)


def test_output_format_the_manifest_cannot_hold_is_refused_naming_the_accepted_ones(tmp_path):
    export, staged = _export(tmp_path)
    with pytest.raises(ManifestError, match=r"output format 'vhdx' is not one of qcow2, raw, vmdk, vdi"):
        build_manifest(export, staged, output_format="vhdx")
