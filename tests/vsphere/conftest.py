"""Fixtures of the vsphere provider's tests: one vcsim per session (its own CA, TLS verified), its extension
reset before each test, VMs made per test with real disk images where their backing points."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from pydantic import SecretStr
from support.vsphere_inventory import Disk, MadeVm, destroy, make_vm
from support.vsphere_sim import PASSWORD, USER, Vcsim

from hyperexport.migration import MigrationRequest
from hyperexport.providers.vsphere import VsphereLogin
from hyperexport.samples import make_base_raw
from hyperexport.validate_input import build

_names = itertools.count(1)


@pytest.fixture(scope="session")
def vcsim_server(tmp_path_factory):
    with Vcsim(tmp_path_factory.mktemp("vcsim")) as server:
        yield server


@pytest.fixture
def vcsim(vcsim_server) -> Vcsim:
    vcsim_server.reset()
    return vcsim_server


@pytest.fixture
def login(vcsim) -> VsphereLogin:
    return VsphereLogin(host=vcsim.host, port=vcsim.port, user=USER, password=SecretStr(PASSWORD), ssl_context=vcsim.ssl_context())


@pytest.fixture(scope="session")
def service_instance(vcsim_server):
    from pyVim.connect import Disconnect

    si = vcsim_server.connect()
    yield si
    Disconnect(si)


@pytest.fixture(scope="session")
def root_raw(tmp_path_factory) -> Path:
    """A 64 MiB sparse boot disk: a few patterned extents, holes between them."""
    return make_base_raw(tmp_path_factory.mktemp("vsphere-images") / "root.raw", 64, seed=3)


@pytest.fixture(scope="session")
def data_raw(tmp_path_factory) -> Path:
    """A 32 MiB sparse data disk."""
    return make_base_raw(tmp_path_factory.mktemp("vsphere-images") / "data.raw", 32, seed=7)


@pytest.fixture
def make_vm_in(service_instance):
    """``make_vm_in(disks, **options)``: a VM in vcsim with a name of its own, destroyed after the test."""
    made: list[MadeVm] = []

    def make(disks: list[Disk], *, name: str | None = None, **options) -> MadeVm:
        vm = make_vm(service_instance, name or f"vm{next(_names):03d}", disks, **options)
        made.append(vm)
        return vm

    yield make
    for vm in made:
        destroy(vm)


@pytest.fixture
def web01(make_vm_in, root_raw, data_raw) -> MadeVm:
    """Running VM "web01…" (2 vCPUs, 4 GiB, EFI with secure boot, two NICs): the data disk on scsi0:0, the boot
    disk on scsi0:1 named first in the boot order."""
    return make_vm_in([Disk(data_raw, 0, 0), Disk(root_raw, 0, 1, boot=True)], name=f"web{next(_names):03d}")


@pytest.fixture
def make_request():
    """``make_request(output, vm=..., **options)``: a MigrationRequest for the vsphere provider, polling fast."""

    def make(output: Path, *, converter: str = "qemu-img", export: dict | None = None, **source) -> MigrationRequest:
        return build(
            MigrationRequest, provider="vsphere", source={"poll_seconds": 0.05, **source},
            export={"output_dir": str(output), **(export or {})}, converter=converter,
        )  # fmt: skip

    return make


@pytest.fixture
def credentials_block(prefect_server, vcsim) -> str:
    from blocks.vsphere import VsphereCredentials

    VsphereCredentials(
        host=vcsim.host, port=vcsim.port, user=USER, password=PASSWORD, ca_bundle=vcsim.certificates.ca.read_text()
    ).save("vcsim-test", overwrite=True)
    return "vcsim-test"

