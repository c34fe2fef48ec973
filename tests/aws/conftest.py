"""Fixtures of the aws provider's tests: one moto server per session, emptied before each test."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.moto_aws import REGION, MotoAws

from hyperexport.migration import MigrationRequest
from hyperexport.samples import make_base_raw
from hyperexport.validate_input import build

MiB = 2**20


@pytest.fixture(scope="session")
def moto_server():
    with MotoAws() as server:
        yield server


@pytest.fixture
def aws(moto_server, monkeypatch) -> MotoAws:
    """moto, empty, with boto3's default chain (AWS_* variables) pointed at it."""
    moto_server.reset()
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in moto_server.env().items():
        monkeypatch.setenv(name, value)
    return moto_server


@pytest.fixture(scope="session")
def root_raw(tmp_path_factory) -> Path:
    """A 1 GiB sparse boot disk: a few patterned extents, holes between them."""
    return make_base_raw(tmp_path_factory.mktemp("aws-images") / "root.raw", 1024, seed=3)


@pytest.fixture(scope="session")
def data_raw(tmp_path_factory) -> Path:
    """A 1 GiB sparse data disk with, besides the pattern, 12 MiB of dense data (many blocks in one range)."""
    path = make_base_raw(tmp_path_factory.mktemp("aws-images") / "data.raw", 1024, seed=7)
    with open(path, "r+b") as handle:
        handle.seek(200 * MiB)
        handle.write(os.urandom(12 * MiB))
    return path


@pytest.fixture
def make_request():
    """``make_request(output, instance=..., **options)``: a MigrationRequest for the aws provider, polling fast."""

    def make(output: Path, *, converter: str = "qemu-img", export: dict | None = None, **source) -> MigrationRequest:
        source = {"region": REGION, "poll_seconds": 0.05, "api_max_attempts": 3, **source}
        return build(
            MigrationRequest, provider="aws", source=source, export={"output_dir": str(output), **(export or {})},
            converter=converter,
        )

    return make


@pytest.fixture(scope="session")
def tiny_raw(tmp_path_factory) -> Path:
    """A 1 GiB sparse disk with one 512 KiB block of data: for tests that never look at the bytes."""
    path = tmp_path_factory.mktemp("aws-images") / "tiny.raw"
    with open(path, "wb") as handle:
        handle.truncate(1024 * MiB)
        handle.write(b"tiny" * (128 * 1024))
    return path


@dataclass
class Instance:
    instance_id: str
    image_id: str
    root_snapshot: str
    data_snapshot: str


@pytest.fixture
def web01(aws, root_raw, data_raw) -> Instance:
    """Instance "web01" (t3.large, two NICs, AMI in uefi mode): root /dev/xvda holds root_raw, /dev/sdb data_raw.

    The data volume is listed first in the instance's block device mappings.
    """
    return _two_volume_instance(aws, root_raw, data_raw)


@pytest.fixture
def light01(aws, tiny_raw) -> Instance:
    """web01's shape with one block of data per volume: for tests about everything but the bytes."""
    return _two_volume_instance(aws, tiny_raw, tiny_raw)


def _two_volume_instance(aws: MotoAws, root_raw: Path, data_raw: Path) -> Instance:
    root, data = aws.publish(root_raw), aws.publish(data_raw)
    image_id = aws.register_ami(root)
    instance_id = aws.launch(image_id, [("/dev/sdb", data), ("/dev/xvda", root)])
    return Instance(instance_id, image_id, root, data)
