"""Helpers shared by the migration tests."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from hyperexport.migration import MigrationRequest
from hyperexport.validate_input import build


def local_request(source: str | Path, output: Path, converter: str = "hyper2kvm", **convert_options) -> MigrationRequest:
    return build(
        MigrationRequest,
        provider="local",
        source={"source": str(source)},
        export={"output_dir": str(output)},
        converter=converter,
        convert_options=convert_options,
    )


def qemu_compare(a: Path, a_fmt: str, b: Path, b_fmt: str = "qcow2") -> subprocess.CompletedProcess:
    return subprocess.run(["qemu-img", "compare", "-f", a_fmt, "-F", b_fmt, str(a), str(b)], capture_output=True, text=True)


def assert_identical(a: Path, a_fmt: str, b: Path, b_fmt: str = "qcow2") -> None:
    result = qemu_compare(a, a_fmt, b, b_fmt)
    assert result.returncode == 0, f"{a} ({a_fmt}) and {b} ({b_fmt}) differ: {result.stdout}{result.stderr}"



def assert_streamed(out: Path, sources: list[Path]) -> dict:
    """The run in ``out`` streamed each raw disk in ``sources`` straight into ``disk-N.qcow2``: identical, no
    staged copy, proved by the stream's digests. Returns the migration report."""
    outputs = sorted(out.glob("*.qcow2"))
    assert [p.name for p in outputs] == [f"disk-{n}.qcow2" for n in range(len(sources))]
    for raw, output in zip(sources, outputs):
        assert_identical(raw, "raw", output)
    staged = [p for p in (out / "source").rglob("*") if p.is_file() and p.suffix != ".json"]
    assert staged == [], "a streamed disk leaves no staged copy"
    report = json.loads((out / "migration-report.json").read_text())
    for disk, verdict in zip(report["disks"], report["validation"]["disks"], strict=True):
        assert disk["streamed"]["layout"] == "qcow2"
        assert verdict["proof"] == "stream digests" and verdict["compare"] == "passed", verdict
    return report

def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_digest(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): sha256(p) for p in sorted(directory.rglob("*")) if p.is_file()}


def accepted_providers() -> str:
    """How pydantic lists the provider names it accepts: "'local', 'aws' or 'gcp'"."""
    from hyperexport.models import ProviderName

    quoted = [f"'{p.value}'" for p in ProviderName]
    return ", ".join(quoted[:-1]) + f" or {quoted[-1]}"
