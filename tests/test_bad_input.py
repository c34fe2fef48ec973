"""Bad input: a clear reason, a non-zero exit, nothing lost, nothing under a final output name."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from hyperexport import cli
from hyperexport.samples import make_disk, make_ova
from support.migrate import tree_digest


def run_cli(server, *args: str) -> tuple[int, str]:
    """The real command, in its own process, against the session's Prefect server."""
    command = [str(Path(sys.executable).with_name("hyperexport")), "--no-progress", *args]
    proc = subprocess.run(command, env=server.env(), capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stderr


def assert_no_final_outputs(out: Path) -> None:
    leftovers = sorted(p.name for p in out.rglob("*") if p.suffix in (".qcow2", ".raw") or p.name == "migration-report.json")
    assert leftovers == [], f"output files left under final names: {leftovers}"


@pytest.fixture
def vmdk(base_raw, tmp_path) -> Path:
    return make_disk(base_raw, "vmdk-sparse", tmp_path / "src")


def test_missing_source_file(prefect_server, tmp_path):
    code, err = run_cli(prefect_server, "--provider", "local", "--vm", str(tmp_path / "nope.vmdk"), "--output", str(tmp_path / "out"), "--convert")
    assert code == cli.EXIT_BAD_INPUT
    assert "nope.vmdk does not exist" in err and "check the path" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_truncated_vmdk_is_refused_before_conversion(prefect_server, vmdk, tmp_path):
    # qemu-img converts a truncated sparse VMDK with exit 0, zeros for the missing grains: we must not.
    truncated = tmp_path / "src" / "truncated.vmdk"
    data = vmdk.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    before = tree_digest(truncated.parent)
    code, err = run_cli(prefect_server, "--provider", "local", "--vm", str(truncated), "--output", str(tmp_path / "out"), "--convert")
    assert code != 0
    assert "truncated.vmdk fails qemu-img check as vmdk" in err and "truncated or corrupt" in err
    assert_no_final_outputs(tmp_path / "out")
    assert tree_digest(truncated.parent) == before


def test_manifest_with_unknown_provider(prefect_server, vmdk, tmp_path):
    manifest = tmp_path / "artifact-manifest.json"
    manifest.write_text(json.dumps({
        "manifest_version": "1.0", "source": {"provider": "openstack"},
        "disks": [{"id": "disk-0", "source_format": "vmdk", "bytes": vmdk.stat().st_size, "local_path": str(vmdk)}],
    }))
    code, err = run_cli(prefect_server, "--manifest", str(manifest), "--output", str(tmp_path / "out"))
    assert code == cli.EXIT_BAD_INPUT
    assert "names provider 'openstack'" in err and "expected one of: local, vsphere, aws, azure, gcp, hyperv" in err
    assert_no_final_outputs(tmp_path / "out")


def test_manifest_with_known_provider_converts(prefect_server, vmdk, base_raw, tmp_path):
    manifest = tmp_path / "artifact-manifest.json"
    manifest.write_text(json.dumps({
        "manifest_version": "1.0", "source": {"provider": "local", "vm_name": "from-manifest"},
        "disks": [{"id": "root", "source_format": "vmdk", "bytes": vmdk.stat().st_size, "local_path": str(vmdk)}],
    }))
    code, err = run_cli(prefect_server, "--manifest", str(manifest), "--output", str(tmp_path / "out"))
    assert code == cli.EXIT_OK, err
    out = tmp_path / "out" / "root.qcow2"
    assert subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(base_raw), str(out)]).returncode == 0


def _ova_with(tmp_path: Path, base_raw: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    good = make_ova([base_raw], tmp_path / "good.ova", "vm")
    bad = tmp_path / "bad.ova"
    with tarfile.open(good) as source, tarfile.open(bad, "w") as target:
        for entry in source.getmembers():
            target.addfile(entry, source.extractfile(entry))
        target.addfile(member, io.BytesIO(data) if data else None)
    return bad


@pytest.mark.parametrize(
    "kind",
    ["dotdot", "absolute", "symlink-out"],
)
def test_ova_with_unsafe_entry_is_refused_whole(kind, prefect_server, base_raw, tmp_path):
    victim = tmp_path / "victim.txt"
    if kind == "dotdot":
        member = tarfile.TarInfo("../../victim.txt")
    elif kind == "absolute":
        member = tarfile.TarInfo(str(victim))
    else:
        member = tarfile.TarInfo("escape")
        member.type, member.linkname = tarfile.SYMTYPE, "/etc"
    member.size = 0 if kind == "symlink-out" else 5
    ova = _ova_with(tmp_path, base_raw, member, b"owned" if kind != "symlink-out" else b"")
    out = tmp_path / "out"
    code, err = run_cli(prefect_server, "--provider", "local", "--vm", str(ova), "--output", str(out), "--convert")
    assert code == cli.EXIT_BAD_INPUT
    assert "outside the extraction directory" in err and "refusing the whole archive" in err
    assert not victim.exists()
    assert not (out / "source" / "bad").exists(), "nothing may be extracted from an unsafe OVA"
    assert_no_final_outputs(out)


@pytest.mark.parametrize(
    ("make_binary", "message"),
    [
        (lambda d: (d / "hyper2kvm").write_text("#!/bin/sh\nexit 0\n") and d / "hyper2kvm", "is not executable"),
        (lambda d: (d / "hyper2kvm").mkdir() or d / "hyper2kvm", "is a directory"),
        (lambda d: d / "missing-hyper2kvm", "does not exist"),
    ],
    ids=["not-executable", "directory", "missing"],
)
def test_unusable_hyper2kvm_binary(make_binary, message, prefect_server, vmdk, tmp_path):
    binary = make_binary(tmp_path)
    out = tmp_path / "out"
    code, err = run_cli(prefect_server, "--provider", "local", "--vm", str(vmdk), "--output", str(out), "--convert",
                        "--converter-binary", str(binary))
    assert code == cli.EXIT_BAD_INPUT
    assert f"converter binary {binary} {message}" in err
    assert_no_final_outputs(out)


def test_conversion_past_its_timeout_kills_the_process_group(prefect_server, vmdk, tmp_path):
    marker = f"hyperexport-timeout-{os.getpid()}"
    binary = tmp_path / "slow-hyper2kvm"
    # A converter that hangs and leaves a grandchild behind: the whole group must go.
    binary.write_text(f"#!/bin/sh\n(exec -a {marker} sleep 300) &\nexec sleep 300\n")
    binary.chmod(0o755)
    out = tmp_path / "out"
    started = time.monotonic()
    code, err = run_cli(prefect_server, "--provider", "local", "--vm", str(vmdk), "--output", str(out), "--convert",
                        "--converter-binary", str(binary), "--timeout", "3")
    assert code != 0
    assert "ran past its 3s timeout" in err and "raise the converter timeout" in err
    assert time.monotonic() - started < 60
    assert_no_final_outputs(out)
    time.sleep(0.5)
    survivors = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    assert survivors == [], "the converter's child process outlived the timeout"
