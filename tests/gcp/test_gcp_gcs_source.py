"""Export objects are read with parallel ranged GETs, and checked against Cloud Storage's crc32c and md5."""

from __future__ import annotations

import os

import pytest
from support.gcp_compute import PROJECT, ZONE
from support.gcp_storage import BUCKET

from hyperexport.errors import InvalidInputError
from hyperexport.models import DiskSource
from hyperexport.providers.gcp.clients import make_context
from hyperexport.providers.gcp.gcs import GcsObjectSource
from hyperexport.providers.registry import get_provider
from hyperexport.transfer import TransferOptions, download

MiB = 2**20


def test_parallel_ranged_download_verifies_crc32c_and_md5(gce, login, tmp_path):
    data = os.urandom(5 * MiB + 12345)
    gce.gcs.client(PROJECT).bucket(BUCKET).blob("hyperexport/r1/disk.raw").upload_from_string(data)
    source = GcsObjectSource(make_context(PROJECT, ZONE, login), BUCKET, "hyperexport/r1/disk.raw")

    result = download(source, tmp_path / "disk.raw", TransferOptions(connections=4, chunk_size=MiB))

    assert (tmp_path / "disk.raw").read_bytes() == data
    assert {"crc32c", "md5"} <= set(result.verified_checksums)
    assert result.ranges_fetched == 6
    assert source.describe().identity.startswith(f"gcs:{BUCKET}/hyperexport/r1/disk.raw#")


@pytest.mark.parametrize("location", ["s3://bucket/key", "gs://Bad_Bucket/x", "gs://hx-exports/../etc/passwd", "gs://hx-exports"])
def test_only_gs_locations_of_valid_buckets_are_opened(login, location):
    provider = get_provider("gcp")
    disk = DiskSource(id="disk-0", location=location, file_name="disk-0.qcow2")
    with pytest.raises(InvalidInputError, match="gs://bucket/object"):
        provider.open_disk(disk, provider.parse({"instance": "web01", "zone": ZONE, "bucket": BUCKET}), login)
