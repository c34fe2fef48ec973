"""Fixtures of the gcp provider's tests: one GCS emulator and one fake Compute Engine per session."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.gcp_compute import DEBIAN_LICENSE, PROJECT, FakeCompute
from support.gcp_requests import source
from support.gcp_storage import BUCKET, GcsEmulator

from hyperexport.migration import MigrationRequest
from hyperexport.samples import make_base_raw
from hyperexport.validate_input import build

KEEP_OBJECT = "backups/keep-me.txt"  # in the bucket before any run: never touched


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory):
    with GcsEmulator(tmp_path_factory.mktemp("gcs") / "emulator.log") as emulator:
        emulator.client(PROJECT).create_bucket(BUCKET)
        yield emulator


@pytest.fixture(scope="session")
def gce_server(gcs_emulator, tmp_path_factory):
    with FakeCompute(gcs_emulator, tmp_path_factory.mktemp("gce")) as fake:
        yield fake


@pytest.fixture
def gce(gce_server, gcs_emulator) -> FakeCompute:
    """The fake Compute Engine, empty, and the bucket holding only KEEP_OBJECT."""
    gce_server.reset()
    bucket = gcs_emulator.client(PROJECT).bucket(BUCKET)
    for blob in bucket.list_blobs():
        blob.delete()
    bucket.blob(KEEP_OBJECT).upload_from_string(b"not hyperexport's")
    return gce_server


@pytest.fixture
def login(gce):
    return gce.login()


@pytest.fixture(scope="session")
def boot_raw(tmp_path_factory) -> Path:
    """A 1 GiB sparse boot disk: a few patterned extents, holes between them."""
    return make_base_raw(tmp_path_factory.mktemp("gcp-images") / "boot.raw", 1024, seed=5)


@pytest.fixture(scope="session")
def data_raw(tmp_path_factory) -> Path:
    return make_base_raw(tmp_path_factory.mktemp("gcp-images") / "data.raw", 1024, seed=11)


@dataclass
class Vm:
    name: str
    disks: list[str]


@pytest.fixture
def web01(gce, boot_raw, data_raw) -> Vm:
    """Instance web01 (n2-standard-4, secure boot, two NICs): boot disk web01 (Debian, UEFI) holds boot_raw,
    disk web01-data data_raw (listed first). Besides: a snapshot and an instance that are not the run's."""
    gce.add_disk("web01", boot_raw, licenses=[DEBIAN_LICENSE], uefi=True)
    gce.add_disk("web01-data", data_raw)
    gce.add_instance("web01", ["web01", "web01-data"], machine_type="n2-standard-4", networks=("default", "backend"),
                     secure_boot=True)  # fmt: skip
    gce.add_snapshot("web01-nightly", "web01", labels={"team": "ops"})
    gce.add_disk("db01", data_raw)
    gce.add_instance("db01", ["db01"], machine_type="e2-medium")
    return Vm("web01", ["web01", "web01-data"])


@pytest.fixture
def make_request():
    """``make_request(output, instance=..., **options)``: a MigrationRequest for the gcp provider, polling fast."""

    def make(output: Path, *, export: dict | None = None, **options) -> MigrationRequest:
        return build(MigrationRequest, provider="gcp", source=source(**options),
                     export={"output_dir": str(output), **(export or {})}, converter="qemu-img")  # fmt: skip

    return make


@pytest.fixture(scope="session")
def key_info(gce_server) -> dict:
    """A service account key (a fresh RSA key) whose token_uri is the fake's token endpoint."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return {
        "type": "service_account", "project_id": PROJECT, "private_key_id": "f00dfeedf00dfeedf00dfeedf00dfeedf00dfeed",
        "private_key": pem.decode(), "client_email": f"migrator@{PROJECT}.iam.gserviceaccount.com",
        "client_id": "100000000000000000001", "token_uri": gce_server.token_uri,
    }  # fmt: skip


@pytest.fixture
def gcp_block(prefect_server, gce, key_info) -> str:
    """A saved GcpServiceAccount block pointed at the fakes; returns its name."""
    from blocks.gcp import GcpServiceAccount

    GcpServiceAccount(service_account_info=json.dumps(key_info), compute_endpoint=gce.endpoint,
                      storage_endpoint=gce.gcs.endpoint).save("gcp-fake", overwrite=True)  # fmt: skip
    return "gcp-fake"

