"""A provider added the way the contract promises: its own package and entry points, nothing edited in
hyperexport. The toy provider (tests/support/toy_plugin) migrates a two-disk VM of a local authenticated
cloud end to end through the real CLI and the session's Prefect server, and passes the conformance suite."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from support.conformance import Harness, ProviderConformance
from support.migrate import assert_identical, sha256
from support.toy_cloud import ToyCloud

from hyperexport.models import ExportOptions

PLUGIN = Path(__file__).resolve().parents[1] / "support" / "toy_plugin"
sys.path.insert(0, str(PLUGIN))  # for this process's own imports; hyperexport's registry here does not see it

from hyperexport_toy import ToyLogin  # noqa: E402
from hyperexport_toy import provider as toy  # noqa: E402


@pytest.fixture
def cloud(base_raw, second_raw, tmp_path):
    disks = tmp_path / "cloud"
    disks.mkdir()
    shutil.copy(base_raw, disks / "web01-root.raw")
    shutil.copy(second_raw, disks / "web01-data.raw")
    with ToyCloud() as running:
        running.add_vm("web01", [disks / "web01-root.raw", disks / "web01-data.raw"])
        yield running


def _env(server) -> dict[str, str]:
    return {**server.env(), "PYTHONPATH": os.pathsep.join(filter(None, [str(PLUGIN), os.environ.get("PYTHONPATH")]))}


def test_the_toy_provider_migrates_a_vm_through_the_cli(cloud, prefect_server, tmp_path):
    env = _env(prefect_server)
    saved = subprocess.run(
        [sys.executable, "-c", "import sys; from hyperexport_toy.block import ToyCredentials; "
         "ToyCredentials(user=sys.argv[1], password=sys.argv[2]).save('toy-cloud', overwrite=True)", cloud.user, cloud.password],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert saved.returncode == 0, saved.stderr[-3000:]
    sources = {path.name: sha256(path) for path in cloud.vms["web01"]}
    out = tmp_path / "out"
    run = subprocess.run(
        [str(Path(sys.executable).with_name("hyperexport")), "--no-progress", "--provider", "toy", "--vm", "web01",
         "--opt", f"api_url={cloud.api_url}", "--credentials-block", "toy-cloud", "--output", str(out),
         "--convert", "--converter", "qemu-img"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    outputs = sorted(out.glob("disk-*.qcow2"))
    assert [p.name for p in outputs] == ["disk-0.qcow2", "disk-1.qcow2"]
    for source, output in zip(cloud.vms["web01"], outputs):
        assert_identical(source, "raw", output)
    assert cloud.exports == {}, "the export was not removed after the download"
    assert {path.name: sha256(path) for path in cloud.vms["web01"]} == sources
    for text in (run.stdout, run.stderr, (out / "migration-report.json").read_text()):
        assert cloud.password not in text


def test_an_option_of_another_provider_is_refused(cloud, prefect_server, tmp_path):
    run = subprocess.run(
        [str(Path(sys.executable).with_name("hyperexport")), "--no-progress", "--provider", "toy", "--vm", "web01",
         "--instance", "i-0123456789abcdef0", "--opt", f"api_url={cloud.api_url}", "--output", str(tmp_path / "out")],
        env=_env(prefect_server), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr[-2000:]
    assert re.search(r"--instance is not an option of the toy provider \(it is one of: [a-z, ]*\baws\b", run.stderr)


@contextmanager
def _failing_after_create(cloud: ToyCloud):
    cloud.fail_exports_after_create = True
    try:
        yield
    finally:
        cloud.fail_exports_after_create = False


class TestToyConformance(ProviderConformance):
    provider_name = "toy"

    @pytest.fixture
    def harness(self, cloud) -> Harness:
        return Harness(
            provider=toy,
            good_source={"vm": "web01", "api_url": cloud.api_url},
            bad_sources=[
                ({"vm": "web01", "api_url": "ftp://127.0.0.1/"}, "source.api_url"),
                ({"vm": "web 01;", "api_url": cloud.api_url}, "source.vm"),
            ],
            export_options=lambda path: ExportOptions(output_dir=path / "out"),
            credentials=ToyLogin(user=cloud.user, password=cloud.password),
            resources_at_source=lambda: {("export", export_id) for export_id in cloud.exports},
            failing_export=lambda: _failing_after_create(cloud),
            pythonpath=[str(PLUGIN)],
        )
