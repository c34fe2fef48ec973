"""Images that would make qemu-img read host files, or hang: refused with exit 2, quickly, nothing copied.

One variant of each class runs through the CLI, the others in the engine (sandbox.py: ``via``)."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from images import qcow2_with_backing, qcow2_with_data_file, qemu_img, vmdk_descriptor
from sandbox import CLI, ENGINE, one_through_cli

from hyperexport.errors import InvalidInputError, UnsafeImageError
from hyperexport.samples import make_ovf


def test_qcow2_whose_backing_file_is_a_host_file(sandbox):
    host = sandbox.host_file()
    disk = qcow2_with_backing(sandbox.src / "disk.qcow2", str(host))
    sandbox.take_snapshot()
    sandbox.assert_refused(sandbox.migrate(disk, via=CLI), "disk.qcow2 is a qcow2 with a backing file", str(host),
                           error=UnsafeImageError)


def test_qcow2_backing_through_a_json_protocol_string(sandbox):
    host = sandbox.host_file()
    backing = "json:" + json.dumps({"driver": "raw", "file": {"driver": "file", "filename": str(host)}})
    disk = qcow2_with_backing(sandbox.src / "disk.qcow2", backing)
    sandbox.take_snapshot()
    sandbox.assert_refused(sandbox.migrate(disk, via=ENGINE), "qcow2 with a backing file", "json:", error=UnsafeImageError)


def test_qcow2_backed_by_a_host_qcow2_named_relative(sandbox):
    host = sandbox.host_file("secret.raw")
    qemu_img("convert", "-q", "-f", "raw", "-O", "qcow2", str(host), str(sandbox.host / "secret.qcow2"))
    disk = qcow2_with_backing(sandbox.src / "disk.qcow2", "../host/secret.qcow2", "qcow2")
    sandbox.take_snapshot()
    sandbox.assert_refused(sandbox.migrate(disk, via=ENGINE), "qcow2 with a backing file", "../host/secret.qcow2",
                           error=UnsafeImageError)


def test_qcow2_with_an_external_data_file(sandbox):
    host = sandbox.host_file()
    disk = qcow2_with_data_file(sandbox.src / "disk.qcow2", host)
    sandbox.take_snapshot()
    sandbox.assert_refused(sandbox.migrate(disk, via=ENGINE), "qcow2 with an external data file", error=UnsafeImageError)


@pytest.mark.parametrize(("case", "via"), one_through_cli(
    ("monolithicFlat", "absolute"), ("monolithicFlat", "dotdot"), ("twoGbMaxExtentFlat", "absolute"), ("twoGbMaxExtentFlat", "dotdot"),
))
def test_flat_vmdk_whose_extent_is_outside(case, via, sandbox):
    create_type, where = case
    host = sandbox.host_file()
    name = str(host) if where == "absolute" else "../host/secret.raw"
    disk = vmdk_descriptor(sandbox.src / "disk.vmdk", [(2048, "FLAT", name)], create_type)
    sandbox.take_snapshot()
    reason = "is an absolute path" if where == "absolute" else "climbs out of its directory"
    sandbox.assert_refused(sandbox.migrate(disk, via=via), f"VMDK extent of disk.vmdk {name!r} {reason}", error=UnsafeImageError)


def test_flat_vmdk_extent_that_is_a_symlink_out(sandbox):
    host = sandbox.host_file()
    (sandbox.src / "disk-flat.vmdk").symlink_to(host)
    disk = vmdk_descriptor(sandbox.src / "disk.vmdk", [(2048, "FLAT", "disk-flat.vmdk")])
    sandbox.take_snapshot()
    sandbox.assert_refused(sandbox.migrate(disk, via=ENGINE), "disk-flat.vmdk", "outside", error=UnsafeImageError)


def test_flat_vmdk_extent_that_is_a_symlink_inside_is_still_refused(sandbox, base_raw):
    shutil.copy(base_raw, sandbox.src / "real.raw")
    (sandbox.src / "disk-flat.vmdk").symlink_to("real.raw")
    disk = vmdk_descriptor(sandbox.src / "disk.vmdk", [(base_raw.stat().st_size // 512, "FLAT", "disk-flat.vmdk")])
    sandbox.take_snapshot()
    sandbox.assert_refused(sandbox.migrate(disk, via=ENGINE), "is a symbolic link", error=UnsafeImageError)


def test_flat_vmdk_extent_that_is_a_hard_link_to_a_host_file(sandbox):
    host = sandbox.host_file()
    os.link(host, sandbox.src / "disk-flat.vmdk")
    disk = vmdk_descriptor(sandbox.src / "disk.vmdk", [(host.stat().st_size // 512, "FLAT", "disk-flat.vmdk")])
    sandbox.take_snapshot()
    sandbox.assert_refused(sandbox.migrate(disk, via=ENGINE), "disk-flat.vmdk", "2 hard links", error=UnsafeImageError)


def test_ovf_disk_that_is_a_hard_link_to_a_host_file(sandbox, base_raw):
    ovf = make_ovf([base_raw], sandbox.src, "vm")
    disk = next(sandbox.src.glob("*.vmdk"))
    host = sandbox.host_file("secret.vmdk")
    disk.unlink()
    os.link(host, disk)
    sandbox.take_snapshot()
    sandbox.assert_refused(sandbox.migrate(ovf, via=ENGINE), disk.name, "2 hard links", error=UnsafeImageError)


def test_flat_vmdk_extent_on_a_fifo_fails_fast(sandbox):
    # qemu-img info on this descriptor hangs forever: we must refuse it before qemu-img opens it.
    os.mkfifo(sandbox.src / "disk-flat.vmdk")
    disk = vmdk_descriptor(sandbox.src / "disk.vmdk", [(2048, "FLAT", "disk-flat.vmdk")])
    sandbox.take_snapshot()
    sandbox.assert_refused(sandbox.migrate(disk, via=CLI), "is a FIFO (named pipe), not a regular file", error=UnsafeImageError)


def test_flat_vmdk_extent_naming_a_device(sandbox):
    disk = vmdk_descriptor(sandbox.src / "disk.vmdk", [(2048, "FLAT", "/dev/zero")])
    sandbox.take_snapshot()
    sandbox.assert_refused(sandbox.migrate(disk, via=ENGINE), "'/dev/zero' is an absolute path", error=UnsafeImageError)


def test_vmdk_extent_as_a_qemu_protocol_string(sandbox):
    disk = vmdk_descriptor(sandbox.src / "disk.vmdk", [(2048, "FLAT", "nbd:127.0.0.1:10809")])
    sandbox.take_snapshot()
    sandbox.assert_refused(sandbox.migrate(disk, via=ENGINE), "is a URL or a qemu protocol string", error=UnsafeImageError)


@pytest.mark.parametrize(("create_type", "via"), one_through_cli("vmfs", "vmfsRaw", "fullDevice", "partitionedDevice", "custom", "vmfsSparse"))
def test_unsupported_vmdk_create_types(create_type, via, sandbox, base_raw):
    shutil.copy(base_raw, sandbox.src / "disk-flat.vmdk")
    disk = vmdk_descriptor(sandbox.src / "disk.vmdk", [(base_raw.stat().st_size // 512, "FLAT", "disk-flat.vmdk")], create_type)
    sandbox.take_snapshot()
    sandbox.assert_refused(sandbox.migrate(disk, via=via), f"createType {create_type!r}", "does not accept", error=UnsafeImageError)


def test_vmdk_snapshot_with_a_parent_is_a_backing_file(sandbox, base_raw):
    host = sandbox.host_file()
    qemu_img("convert", "-q", "-f", "raw", "-O", "vmdk", str(host), str(sandbox.host / "parent.vmdk"))
    shutil.copy(base_raw, sandbox.src / "disk-flat.vmdk")
    disk = vmdk_descriptor(sandbox.src / "disk.vmdk", [(base_raw.stat().st_size // 512, "FLAT", "disk-flat.vmdk")],
                           extra=f'parentFileNameHint="{sandbox.host / "parent.vmdk"}"\n')
    sandbox.take_snapshot()
    sandbox.assert_refused(sandbox.migrate(disk, via=ENGINE), "VMDK snapshot (delta) whose parent is", error=UnsafeImageError)


def test_dev_zero_as_the_disk(sandbox):
    sandbox.take_snapshot()
    sandbox.assert_refused(sandbox.migrate("/dev/zero", via=CLI), "/dev/zero is a character device, not a regular file",
                           error=UnsafeImageError)


def test_fifo_as_the_disk(sandbox):
    os.mkfifo(sandbox.src / "disk.raw")
    sandbox.take_snapshot()
    sandbox.assert_refused(sandbox.migrate(sandbox.src / "disk.raw", via=ENGINE), "is a FIFO (named pipe)", error=UnsafeImageError)


def test_symlink_to_dev_zero_as_the_disk(sandbox):
    (sandbox.src / "disk.raw").symlink_to("/dev/zero")
    sandbox.take_snapshot()
    sandbox.assert_refused(sandbox.migrate(sandbox.src / "disk.raw", via=ENGINE), "is a character device", error=UnsafeImageError)


TEXTS = {
    "html": (b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>login</body></html>\n", "web page"),
    "xml": (b'<?xml version="1.0"?>\n<Error><Code>AccessDenied</Code></Error>\n', "an XML document"),
    "json": (b'{"error": "unauthorized"}\n', "a JSON document"),
}


@pytest.mark.parametrize(("kind", "via"), one_through_cli(*TEXTS))
def test_text_saved_as_a_disk_is_not_a_raw_disk(kind, via, sandbox):
    content, looks = TEXTS[kind]
    disk = sandbox.src / "disk.img"
    disk.write_bytes(content)
    sandbox.take_snapshot()
    sandbox.assert_refused(sandbox.migrate(disk, via=via), looks, "not a disk image", "authentication", error=InvalidInputError)


def test_qed_image_with_a_backing_file_is_not_read_as_raw(sandbox):
    host = sandbox.host_file()
    disk = sandbox.src / "disk.img"
    qemu_img("create", "-q", "-f", "qed", "-u", "-b", str(host), "-F", "raw", str(disk), "1M")
    sandbox.take_snapshot()
    sandbox.assert_refused(sandbox.migrate(disk, via=ENGINE), "is a QED image, which hyperexport does not convert",
                           error=InvalidInputError)


def test_qcow_version_1_with_a_backing_file(sandbox):
    host = sandbox.host_file()
    disk = sandbox.src / "disk.qcow"
    qemu_img("create", "-q", "-f", "qcow", "-b", str(host), "-F", "raw", str(disk), "1M")
    sandbox.take_snapshot()
    sandbox.assert_refused(sandbox.migrate(disk, via=ENGINE), "with a backing file", error=UnsafeImageError)
