"""Every disk reaches staging through one seam, the provider's ``open_disk``: a local path is read in place, a
byte source is downloaded into ``source/<disk id>/`` and a VMDK descriptor's extents are read through the
source's ``sibling``, with its credentials, from the same place only."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from hyperexport.errors import InvalidInputError, UnsafeImageError
from hyperexport.models import DiskSource, ExportOptions
from hyperexport.samples import make_disk
from hyperexport.staging import open_builtin, stage_disk
from hyperexport.transfer import FileRangeSource, HttpRangeSource


def _disk(location: str, name: str) -> DiskSource:
    return DiskSource(id="disk-0", location=location, file_name=name)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_path_is_staged_in_place_and_a_byte_source_is_downloaded(base_raw, tmp_path):
    image = make_disk(base_raw, "qcow2", tmp_path / "src", name="vm")
    before = _sha256(image)
    export = ExportOptions(output_dir=tmp_path / "out")

    in_place = stage_disk(_disk(str(image), image.name), export, open_source=lambda d: image)
    assert in_place.path == image and in_place.bytes_fetched == 0

    copied = stage_disk(_disk("sdk://vm/disk-0", image.name), export, open_source=lambda d: FileRangeSource(image))
    assert copied.path == tmp_path / "out" / "source" / "disk-0" / image.name
    assert copied.path.read_bytes() == image.read_bytes() and copied.format.value == "qcow2"
    assert _sha256(image) == before


def test_extents_come_through_the_sources_sibling_with_its_headers_never_its_query(base_raw, http_server, tmp_path):
    descriptor = make_disk(base_raw, "vmdk-flat", tmp_path / "src", name="vm")
    extent = descriptor.with_name("vm-flat.vmdk")
    http_server.add_file("/ds/vm.vmdk", descriptor)
    http_server.add_file("/ds/vm-flat.vmdk", extent)
    url = http_server.url("/ds/vm.vmdk", "sig=s3cr3t")
    source = HttpRangeSource(url, headers={"Cookie": "vmware_soap_session=abc"}, name="vm.vmdk")

    staged = stage_disk(_disk("vsphere://vm/disk-0", "vm.vmdk"), ExportOptions(output_dir=tmp_path / "out"),
                        open_source=lambda d: source)

    assert (staged.path.parent / "vm-flat.vmdk").read_bytes() == extent.read_bytes()
    extent_requests = [r for r in http_server.stats.log if "vm-flat" in r.path]
    assert extent_requests and all(r.headers.get("cookie") == "vmware_soap_session=abc" for r in extent_requests)
    assert all("s3cr3t" not in r.query for r in extent_requests)


def test_a_descriptor_from_a_source_without_siblings_is_refused_with_what_to_do(base_raw, tmp_path):
    descriptor = make_disk(base_raw, "vmdk-flat", tmp_path / "src", name="vm")

    with pytest.raises(InvalidInputError, match=r"separate extents \(vm-flat.vmdk\).*export the disk as one file"):
        stage_disk(_disk("sdk://vm/disk-0", "vm.vmdk"), ExportOptions(output_dir=tmp_path / "out"),
                   open_source=lambda d: FileRangeSource(descriptor))
    assert not (tmp_path / "out" / "source" / "disk-0" / "vm-flat.vmdk").exists()


def test_a_sibling_never_leaves_its_server(http_server):
    source = HttpRangeSource(http_server.url("/ds/vm.vmdk"), headers={"Authorization": "Bearer t"})
    with pytest.raises(UnsafeImageError, match="another server"):
        source.sibling("http://198.51.100.7/steal")
    assert source.sibling("vm-flat.vmdk").url == http_server.url("/ds/vm-flat.vmdk")


def test_the_built_in_sources_take_absolute_paths_and_http_urls_only(tmp_path):
    assert open_builtin(_disk(str(tmp_path / "a.raw"), "a.raw")) == tmp_path / "a.raw"
    assert open_builtin(_disk(f"file://{tmp_path}/a.raw", "a.raw")) == tmp_path / "a.raw"
    assert isinstance(open_builtin(_disk("https://example.test/a.raw", "a.raw")), HttpRangeSource)
    with pytest.raises(InvalidInputError, match="neither an absolute path nor an http"):
        stage_disk(_disk("relative/a.raw", "a.raw"), ExportOptions(output_dir=tmp_path / "out"))
