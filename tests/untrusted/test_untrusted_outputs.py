"""Outputs never overwrite, delete or validate against a source; manifests name only disks beside them.

One variant of each class runs through the CLI, the others in the engine (sandbox.py: ``via``)."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess

import pytest
from sandbox import CLI, ENGINE, one_through_cli

from hyperexport import cli
from hyperexport.errors import InvalidInputError, UnsafeImageError
from hyperexport.samples import make_disk


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_output_is_the_source_directory_and_the_source_is_named_like_an_output(sandbox, base_raw):
    source = make_disk(base_raw, "qcow2", sandbox.src, name="disk-0")
    sandbox.take_snapshot()
    run = sandbox.migrate(source, output=sandbox.src, via=CLI)
    sandbox.assert_refused(run, "disk-0.qcow2", "named like a file the run writes", "Choose another output directory",
                           error=UnsafeImageError)
    assert not (sandbox.src / "source").exists() and not (sandbox.src / "migration-report.json").exists()


def test_output_directory_is_the_source_file(sandbox, base_raw):
    source = make_disk(base_raw, "qcow2", sandbox.src, name="vm")
    sandbox.take_snapshot()
    sandbox.assert_refused(sandbox.migrate(source, output=source, via=ENGINE), "is the source", "choose another output directory",
                           error=UnsafeImageError)


def test_source_inside_the_runs_staging_directory(sandbox, base_raw):
    source = make_disk(base_raw, "vmdk-sparse", sandbox.root / "out" / "source", name="vm")
    digest = _sha(source)
    sandbox.take_snapshot()
    run = sandbox.migrate(source, via=ENGINE)
    sandbox.assert_refused(run, "which the run rewrites and removes", error=UnsafeImageError)
    assert _sha(source) == digest


def test_output_holding_a_hard_link_to_the_source(sandbox, base_raw):
    source = make_disk(base_raw, "qcow2", sandbox.src, name="vm")
    sandbox.out.mkdir()
    os.link(source, sandbox.out / "disk-0.qcow2")
    sandbox.take_snapshot()
    run = sandbox.migrate(source, via=ENGINE)
    sandbox.assert_refused(run, "is the same file as a source", error=UnsafeImageError, outputs_may_exist=True)
    assert os.path.samefile(source, sandbox.out / "disk-0.qcow2")


def test_output_beside_a_source_with_another_name_migrates_and_leaves_it(sandbox, base_raw):
    source = make_disk(base_raw, "qcow2", sandbox.src, name="vm")
    digest = _sha(source)
    run = sandbox.migrate(source, output=sandbox.src)
    assert run.code == cli.EXIT_OK, run.stderr[-3000:]
    assert _sha(source) == digest
    compare = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(base_raw), str(sandbox.src / "disk-0.qcow2")])
    assert compare.returncode == 0


def test_failed_and_timed_out_runs_never_remove_the_source(sandbox, base_raw, tmp_path):
    source = make_disk(base_raw, "qcow2", sandbox.src, name="vm")
    digest = _sha(source)
    slow = sandbox.root / "slow-hyper2kvm"
    slow.write_text("#!/bin/sh\nexec sleep 300\n")
    slow.chmod(0o755)
    sandbox.take_snapshot()
    run = sandbox.cli("--provider", "local", "--vm", str(source), "--output", str(sandbox.src), "--convert",
                      "--converter-binary", str(slow), "--timeout", "3")
    assert run.code != 0 and "timeout" in run.stderr
    assert _sha(source) == digest
    failing = sandbox.root / "failing-hyper2kvm"
    failing.write_text("#!/bin/sh\necho boom >&2\nexit 3\n")
    failing.chmod(0o755)
    sandbox.take_snapshot()
    run = sandbox.cli("--provider", "local", "--vm", str(source), "--output", str(sandbox.src), "--convert",
                      "--converter-binary", str(failing))
    assert run.code != 0
    assert _sha(source) == digest


@pytest.mark.parametrize(("place", "via"), one_through_cli("under-a-file", "sysfs"))
def test_unusable_output_directory_is_bad_input(place, via, sandbox, base_raw):
    source = make_disk(base_raw, "qcow2", sandbox.src, name="vm")
    if place == "sysfs":
        output = f"/sys/hyperexport-{secrets.token_hex(4)}/out"
    else:
        (sandbox.root / "a-file").write_text("not a directory")
        output = str(sandbox.root / "a-file" / "out")
    sandbox.take_snapshot()
    run = sandbox.migrate(source, output=output, via=via)
    sandbox.assert_refused(run, "cannot be created", "choose a writable place", error=InvalidInputError)
    assert not os.path.exists(output)


def _manifest(sandbox, local_path: str, disk_id: str = "root") -> object:
    path = sandbox.src / "artifact-manifest.json"
    path.write_text(json.dumps({
        "manifest_version": "1.0", "source": {"provider": "local"},
        "disks": [{"id": disk_id, "source_format": "raw", "bytes": 1 << 20, "local_path": local_path}],
    }))
    return path


@pytest.mark.parametrize(("how", "via"), one_through_cli("absolute", "dotdot", "symlink"))
def test_manifest_naming_a_host_file(how, via, sandbox):
    host = sandbox.host_file()
    if how == "absolute":
        local_path = str(host)
    elif how == "dotdot":
        local_path = "../host/secret.raw"
    else:
        (sandbox.src / "disk.raw").symlink_to(host)
        local_path = "disk.raw"
    manifest = _manifest(sandbox, local_path)
    sandbox.take_snapshot()
    run = sandbox.run("--manifest", str(manifest), "--output", str(sandbox.out), "--converter", "qemu-img", via=via)
    sandbox.assert_refused(run, "artifact-manifest.json", error=UnsafeImageError)
    assert any(p in run.error_line for p in ("outside the manifest's directory", "climbs out", "outside"))


def test_manifest_converted_into_its_own_directory_over_its_disk(sandbox, base_raw):
    shutil.copy(base_raw, sandbox.src / "root.raw")
    manifest = _manifest(sandbox, "root.raw")
    sandbox.take_snapshot()
    run = sandbox.run("--manifest", str(manifest), "--output", str(sandbox.src), "--format", "raw", "--converter", "qemu-img",
                      via=ENGINE)
    sandbox.assert_refused(run, "root.raw", "named like a file the run writes", error=UnsafeImageError)
