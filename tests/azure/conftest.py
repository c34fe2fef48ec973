"""Fixtures of the azure provider's tests: Azurite and the local Resource Manager, one each per session."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.azure_arm import RG, FakeArm
from support.azure_storage import Azurite

from hyperexport.migration import MigrationRequest
from hyperexport.samples import make_base_raw
from hyperexport.validate_input import build

MiB = 2**20


@pytest.fixture(scope="session")
def azure_services(tmp_path_factory):
    home = tmp_path_factory.mktemp("azure")
    with Azurite(home / "azurite") as azurite, FakeArm(azurite, home / "arm") as arm:
        yield arm


@pytest.fixture
def arm(azure_services, monkeypatch) -> FakeArm:
    """The local Resource Manager (and Azurite behind it), emptied; no proxy variables in the way."""
    azure_services.reset()
    azure_services.azurite.proxy.reset()
    azure_services.secret = azure_services.__class__.secret
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    return azure_services


@pytest.fixture(scope="session")
def os_raw(tmp_path_factory) -> Path:
    """A 16 MiB sparse OS disk: a few patterned extents, holes between them."""
    return make_base_raw(tmp_path_factory.mktemp("azure-images") / "os.raw", 16, seed=3)


@pytest.fixture(scope="session")
def data_raw(tmp_path_factory) -> Path:
    """A 24 MiB sparse data disk with 6 MiB of dense data besides the pattern (one page range over 4 MiB)."""
    path = make_base_raw(tmp_path_factory.mktemp("azure-images") / "data.raw", 24, seed=7)
    with open(path, "r+b") as handle:
        handle.seek(9 * MiB)
        handle.write(os.urandom(6 * MiB))
    return path


@dataclass
class Vm:
    name: str
    os_disk: str
    data_disk: str


@pytest.fixture
def web01(arm, os_raw, data_raw) -> Vm:
    """VM web01 (Standard_D2s_v3, Trusted Launch, one NIC) in rg-web: OS disk os_raw, data disk data_raw at LUN 0.

    A second data disk (LUN 3) would come after LUN 0; the data disk is listed first in the VM's model."""
    os_disk = arm.add_disk(RG, "web01-os", os_raw, os_type="Linux")
    data_disk = arm.add_disk(RG, "web01-data", data_raw)
    arm.add_vm(RG, "web01", os_disk, [(0, data_disk)])
    return Vm("web01", os_disk, data_disk)


@pytest.fixture
def make_request():
    """``make_request(output, vm=..., **options)``: a MigrationRequest for the azure provider, polling fast."""

    def make(output: Path, *, converter: str = "qemu-img", export: dict | None = None, **source) -> MigrationRequest:
        source = {"poll_seconds": 0.01, **source}
        if "vm" in source:
            source.setdefault("resource_group", RG)
        return build(
            MigrationRequest, provider="azure", source=source, export={"output_dir": str(output), **(export or {})},
            converter=converter,
        )

    return make
