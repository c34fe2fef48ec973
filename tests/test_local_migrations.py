"""Every input kind of the local provider, through both converters, checked with qemu-img compare."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hyper2kvm.manifest.loader import ManifestLoader

from hyperexport.migration import run_migration
from hyperexport.samples import DISK_KINDS, make_disk, make_ova, make_ovf
from support.migrate import assert_identical, local_request, tree_digest

CONVERTERS = ["hyper2kvm", "qemu-img"]


@pytest.fixture(scope="module")
def disks(base_raw, tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("disks")
    return {kind: make_disk(base_raw, kind, directory) for kind in DISK_KINDS}


def _check_migration(report, sources: list[tuple[Path, str]], base_raws: list[Path]):
    assert report.success
    outputs = report.conversion.converted_files
    assert len(outputs) == len(sources)
    for (source, fmt), output, raw in zip(sources, outputs, base_raws):
        assert output.suffix == ".qcow2" and output.exists()
        assert_identical(source, fmt, output)
        # Against the raw the image was made from: catches a VHD footer read as data.
        assert_identical(raw, "raw", output)
    for verdict in report.validation.disks:
        assert (verdict.check.value, verdict.virtual_size.value, verdict.compare.value) == ("passed", "passed", "passed")
    ManifestLoader().load(report.manifest_path)
    saved = json.loads(report.report_path.read_text())
    assert saved["validation"]["disks"][0]["compare"] == "passed"


@pytest.mark.parametrize("converter", CONVERTERS)
@pytest.mark.parametrize("kind", list(DISK_KINDS))
def test_disk_file_migrates_identically(kind, converter, disks, base_raw, tmp_path):
    source = disks[kind]
    before = tree_digest(source.parent)
    report = run_migration(local_request(source, tmp_path / "out", converter))
    fmt = DISK_KINDS[kind][0]
    _check_migration(report, [(source, fmt)], [base_raw])
    assert report.disks[0].format.qemu_format == fmt
    assert tree_digest(source.parent) == before, "the source disks were modified"


@pytest.mark.parametrize("converter", CONVERTERS)
def test_ova_migrates_with_ovf_metadata(converter, base_raw, second_raw, tmp_path):
    ova = make_ova([base_raw, second_raw], tmp_path / "vm.ova", "web01", cpus=4, mem_mib=6144,
                   macs=("00:50:56:aa:bb:01", "00:50:56:aa:bb:02"))
    report = run_migration(local_request(ova, tmp_path / "out", converter))
    extracted = sorted((tmp_path / "out" / "source" / "vm").glob("*.vmdk"))
    _check_migration(report, [(p, "vmdk") for p in extracted], [base_raw, second_raw])
    manifest = json.loads(report.manifest_path.read_text())
    assert manifest["source"]["export_method"] == "ova"
    assert manifest["vm"] == {"cpu": 4, "mem_gb": 6, "firmware": "uefi", "secureboot": False,
                              "os_hint": "linux", "os_version": "otherLinux64Guest"}
    assert [n["mac"] for n in manifest["nics"]] == ["00:50:56:aa:bb:01", "00:50:56:aa:bb:02"]
    assert [(d["id"], d["disk_type"], d["boot_order_hint"]) for d in manifest["disks"]] == [
        ("disk-0", "boot", 0), ("disk-1", "data", 1)]


@pytest.mark.parametrize("converter", CONVERTERS)
def test_ovf_directory_migrates(converter, base_raw, tmp_path):
    ovf = make_ovf([base_raw], tmp_path / "ovf", "db01", efi=False)
    report = run_migration(local_request(ovf.parent, tmp_path / "out", converter))
    _check_migration(report, [(next(ovf.parent.glob("*.vmdk")), "vmdk")], [base_raw])
    assert json.loads(report.manifest_path.read_text())["vm"]["firmware"] == "bios"


@pytest.mark.parametrize("converter", CONVERTERS)
@pytest.mark.parametrize("kind", ["vhd-fixed", "vmdk-stream", "qcow2"])
def test_disk_url_migrates(kind, converter, disks, base_raw, http_server, tmp_path):
    url = http_server.add_file(f"/images/{disks[kind].name}", disks[kind])
    report = run_migration(local_request(url, tmp_path / "out", converter))
    staged = tmp_path / "out" / "source" / "disk-0" / disks[kind].name
    _check_migration(report, [(staged, DISK_KINDS[kind][0])], [base_raw])
    assert report.disks[0].bytes_fetched >= disks[kind].stat().st_size
    assert report.disks[0].sha256 is not None


def test_flat_vmdk_url_fetches_its_extent(disks, base_raw, http_server, tmp_path):
    descriptor = disks["vmdk-flat"]
    extent = descriptor.with_name(descriptor.stem + "-flat.vmdk")
    url = http_server.add_file(f"/v/{descriptor.name}", descriptor)
    http_server.add_file(f"/v/{extent.name}", extent)
    report = run_migration(local_request(url, tmp_path / "out", "qemu-img"))
    _check_migration(report, [(tmp_path / "out" / "source" / "disk-0" / descriptor.name, "vmdk")], [base_raw])


@pytest.mark.parametrize("kind", ["ova", "ovf"])
def test_ova_and_ovf_urls_migrate(kind, base_raw, http_server, tmp_path):
    if kind == "ova":
        package = make_ova([base_raw], tmp_path / "pkg" / "app.ova", "app")
        url = http_server.add_file("/pkg/app.ova", package)
    else:
        package = make_ovf([base_raw], tmp_path / "pkg", "app")
        for file in package.parent.iterdir():
            http_server.add_file(f"/pkg/{file.name}", file)
        url = http_server.url("/pkg/app.ovf")
    report = run_migration(local_request(url, tmp_path / "out"))
    staged = report.disks[0].path
    _check_migration(report, [(staged, "vmdk")], [base_raw])


def test_dry_run_writes_no_output_disks(disks, tmp_path):
    report = run_migration(local_request(disks["qcow2"], tmp_path / "out", dry_run=True))
    assert report.conversion.success and report.conversion.converted_files == []
    assert report.conversion.metadata["planned_files"] == [str(tmp_path / "out" / "disk-0.qcow2")]
    assert not (tmp_path / "out" / "disk-0.qcow2").exists()
    assert report.validation is None


def test_source_file_is_never_written(disks, tmp_path):
    source = tmp_path / "mine.vhd"
    shutil.copy(disks["vhd-fixed"], source)
    source.chmod(0o444)
    report = run_migration(local_request(source, tmp_path / "out"))
    assert report.success
