"""Engine-level rules, fast: bounded qemu-img, bounded hashing, name containment, secrets out of models."""

from __future__ import annotations

import os
import shutil
import time

import pytest
from images import qcow2_with_backing, vmdk_descriptor

from hyperexport import cancel, procs, qemu
from hyperexport.errors import CancelledError, ResourceLimitError, UnsafeImageError, ValidationError
from hyperexport.image_safety import inspect
from hyperexport.migration import MigrationRequest, export_vm, preflight, validate
from hyperexport.models import ConversionResult, DiskFormat, StagedDisk
from hyperexport.paths import check_relative_name, contained, public_url
from hyperexport.providers import local
from hyperexport.samples import make_disk
from hyperexport.staging import sha256_file
from hyperexport.validate_input import build


def test_qemu_img_info_on_a_fifo_extent_is_stopped_by_its_limit(tmp_path):
    # What inspect() refuses up front: were it ever reached, the bound still ends it, and its process with it.
    os.mkfifo(tmp_path / "disk-flat.vmdk")
    descriptor = vmdk_descriptor(tmp_path / "disk.vmdk", [(2048, "FLAT", "disk-flat.vmdk")])
    started = time.monotonic()
    with pytest.raises(ResourceLimitError, match="qemu-img info of disk.vmdk ran past its 2s limit"):
        qemu.info(descriptor, "vmdk", limits=procs.Limits(timeout_s=2, memory_bytes=2**30, cpu_s=10))
    assert time.monotonic() - started < 10
    assert procs.live() == []


def test_inspect_refuses_the_fifo_extent_before_qemu_img_runs(tmp_path):
    os.mkfifo(tmp_path / "disk-flat.vmdk")
    descriptor = vmdk_descriptor(tmp_path / "disk.vmdk", [(2048, "FLAT", "disk-flat.vmdk")])
    started = time.monotonic()
    with pytest.raises(UnsafeImageError, match="FIFO"):
        inspect(descriptor, "vmdk")
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("special", ["/dev/zero", "fifo", "directory"])
def test_hashing_refuses_what_is_not_a_regular_file(special, tmp_path):
    path = tmp_path / "thing"
    if special == "/dev/zero":
        path = "/dev/zero"
    elif special == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    started = time.monotonic()
    with pytest.raises(UnsafeImageError, match="not a regular file"):
        sha256_file(path)
    assert time.monotonic() - started < 1


def test_hashing_stops_on_cancel(tmp_path):
    big = tmp_path / "big.raw"
    with open(big, "wb") as handle:
        handle.truncate(2**30)
    cancel.request_cancel()
    try:
        with pytest.raises(CancelledError):
            sha256_file(big, chunk=2**20)
    finally:
        cancel.reset()


def test_qemu_img_info_never_opens_the_backing_file(tmp_path):
    # A backing file on a FIFO would hang qemu-img if it opened it: info answers, inspect refuses.
    os.mkfifo(tmp_path / "pipe")
    disk = qcow2_with_backing(tmp_path / "d.qcow2", str(tmp_path / "pipe"))
    assert qemu.info(disk, "qcow2").full_backing_filename == str(tmp_path / "pipe")
    with pytest.raises(UnsafeImageError, match="backing file"):
        inspect(disk, "qcow2")


@pytest.mark.parametrize(
    "name", ["/etc/passwd", "../x", "a/../../x", "C:\\x.vmdk", "c:/x", "file:///etc/passwd", "json:{}", "nbd:h:1", "", " x", "a\0b"]
)
def test_names_that_leave_their_directory(name):
    with pytest.raises(UnsafeImageError):
        check_relative_name(name, "name")


def test_plain_names_have_no_directory(tmp_path):
    with pytest.raises(UnsafeImageError, match="directory part"):
        contained(tmp_path, "sub/disk.vmdk", "extent", plain=True)
    assert contained(tmp_path, "disk-flat.vmdk", "extent", plain=True) == tmp_path / "disk-flat.vmdk"
    assert contained(tmp_path, "a/disk.img", "href") == tmp_path / "a" / "disk.img"


def test_url_credentials_and_query_never_reach_the_models(tmp_path):
    url = "http://alice:s3cret@127.0.0.1:9/d/disk.qcow2?X-Signature=topsecret"
    options = local.LocalOptions(source=url)
    assert "s3cret" not in options.source and "s3cret" not in repr(options) and "s3cret" not in options.model_dump_json()
    assert options.auth_headers()["Authorization"].startswith("Basic ")
    assert local.provider.describe(options) == "local source http://127.0.0.1:9/d/disk.qcow2"
    request = build(MigrationRequest, provider="local", source={"source": url}, export={"output_dir": str(tmp_path / "out")},
                    converter="qemu-img")
    result = export_vm(preflight(request))
    dumped = result.model_dump_json()
    assert "s3cret" not in dumped and "topsecret" not in dumped and "alice" not in dumped
    assert result.disks[0].location == public_url(url) == "http://127.0.0.1:9/d/disk.qcow2"


def test_validation_refuses_to_compare_an_output_with_itself(tmp_path, base_raw):
    disk = make_disk(base_raw, "qcow2", tmp_path, name="disk-0")
    request = build(MigrationRequest, provider="local", source={"source": str(disk)}, export={"output_dir": str(tmp_path)},
                    converter="qemu-img")
    staged = StagedDisk(id="disk-0", path=disk, format=DiskFormat.qcow2, size_bytes=disk.stat().st_size,
                        virtual_size_bytes=base_raw.stat().st_size)
    with pytest.raises(ValidationError, match="is the source itself"):
        validate(request, [staged], ConversionResult(success=True, converted_files=[disk]))


@pytest.mark.parametrize("kind", ["vmdk-2gb-flat", "vmdk-2gb-sparse"])
def test_split_vmdks_are_inspected_with_their_extents(kind, tmp_path, base_raw):
    subformat = "twoGbMaxExtentFlat" if kind.endswith("flat") else "twoGbMaxExtentSparse"
    disk = tmp_path / "split.vmdk"
    qemu.procs.run_bounded(["qemu-img", "convert", "-q", "-f", "raw", "-O", "vmdk", "-o", f"subformat={subformat}",
                            str(base_raw), str(disk)], what="make")
    assert inspect(disk, "vmdk").virtual_size == base_raw.stat().st_size
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    extent = sorted(p for p in tmp_path.iterdir() if p.name.startswith("split-"))[0]
    shutil.move(extent, moved / extent.name)
    extent.symlink_to(moved / extent.name)
    with pytest.raises(UnsafeImageError, match="symbolic link"):
        inspect(disk, "vmdk")


@pytest.mark.parametrize("attribute", ['ovf:size="12abc"', 'ovf:capacity="-5"'])
def test_ovf_numbers_that_are_not_numbers(attribute, tmp_path, base_raw):
    import re

    from hyperexport.errors import InvalidInputError
    from hyperexport.ovf import parse_ovf
    from hyperexport.samples import make_ovf

    ovf = make_ovf([base_raw], tmp_path / "pkg", "vm")
    key = attribute.split("=")[0]
    ovf.write_text(re.sub(rf'{key}="\d+"', attribute, ovf.read_text(), count=1))
    with pytest.raises(InvalidInputError, match="the descriptor is corrupt"):
        parse_ovf(ovf)
