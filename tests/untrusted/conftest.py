"""The untrusted-input corpus: hostile images, OVAs, OVFs and manifests, each run through the real CLI.

Every test works in a ``Sandbox``: ``host/`` holds files an attacker wants (their bytes are a random marker),
``src/`` the hostile input, ``out/`` the output directory. After the run the sandbox is compared with its
snapshot: nothing new outside ``out/``, every pre-existing file unchanged (sources and host files), and no
output file holding the marker's bytes.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hyperexport import cli

TIME_BOUND_S = 30.0


def _sha(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(2**20):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    elapsed: float


@dataclass
class Sandbox:
    root: Path
    marker: bytes
    server: object
    snapshot: dict[str, str] = field(default_factory=dict)

    @property
    def host(self) -> Path:
        return self.root / "host"

    @property
    def src(self) -> Path:
        return self.root / "src"

    @property
    def out(self) -> Path:
        return self.root / "out"

    def host_file(self, name: str = "secret.raw", size: int = 1 << 20) -> Path:
        """A host file an attacker wants copied into the output: the marker, repeated."""
        path = self.host / name
        path.write_bytes((self.marker * (size // len(self.marker) + 1))[:size])
        return path

    def take_snapshot(self) -> None:
        self.snapshot = self._walk()

    def _walk(self) -> dict[str, str]:
        found = {}
        for path in sorted(self.root.rglob("*")):
            rel = str(path.relative_to(self.root))
            if rel == "out" or rel.startswith("out/"):
                continue
            if path.is_symlink():
                found[rel] = "link:" + os.readlink(path)
            elif path.is_file():
                found[rel] = _sha(path)
            elif path.is_dir():
                found[rel] = "dir"
            else:
                found[rel] = "special"
        return found

    def cli(self, *args: str, timeout: float = 120) -> Run:
        """``hyperexport --no-progress ARGS`` in its own process against the session's Prefect server."""
        command = [str(Path(sys.executable).with_name("hyperexport")), "--no-progress", *args]
        started = time.monotonic()
        proc = subprocess.run(command, env=self.server.env(), capture_output=True, text=True, timeout=timeout)
        return Run(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)

    def migrate(self, source: str | Path, *extra: str, output: Path | None = None) -> Run:
        return self.cli("--provider", "local", "--vm", str(source), "--output", str(output or self.out),
                        "--convert", "--converter", "qemu-img", *extra)

    def assert_untouched(self) -> None:
        """Nothing outside out/ appeared, vanished or changed; no output file holds host bytes."""
        now = self._walk()
        assert now == self.snapshot, {
            "new": sorted(set(now) - set(self.snapshot)),
            "gone": sorted(set(self.snapshot) - set(now)),
            "changed": sorted(k for k in now if k in self.snapshot and now[k] != self.snapshot[k]),
        }
        if self.out.exists():
            for path in self.out.rglob("*"):
                if path.is_file() and not path.is_symlink():
                    assert not _holds(path, self.marker), f"{path} holds the host marker's bytes"

    def assert_refused(self, run: Run, *phrases: str, outputs_may_exist: bool = False) -> None:
        assert run.code == cli.EXIT_BAD_INPUT, f"exit {run.code}\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}"
        errors = [line for line in run.stderr.splitlines() if line.startswith("hyperexport: error: ")]
        assert errors, f"no 'hyperexport: error:' line in:\n{run.stderr[-3000:]}"
        for phrase in phrases:
            assert phrase in errors[-1], f"{phrase!r} not in: {errors[-1]}"
        assert run.elapsed < TIME_BOUND_S, f"took {run.elapsed:.1f}s"
        self.assert_untouched()
        if outputs_may_exist:
            return
        leftovers = sorted(p.name for p in self.out.rglob("*") if p.suffix in (".qcow2", ".raw") or p.name == "migration-report.json") if self.out.exists() else []
        assert leftovers == [], f"output files under final names after a refusal: {leftovers}"


def _holds(path: Path, marker: bytes) -> bool:
    tail = b""
    with open(path, "rb") as handle:
        while block := handle.read(2**20):
            if marker in tail + block:
                return True
            tail = block[-len(marker):]
    return False


@pytest.fixture
def sandbox(prefect_server, tmp_path) -> Sandbox:
    box = Sandbox(tmp_path / "box", f"HOST-MARKER-{secrets.token_hex(12)}|".encode(), prefect_server)
    for directory in (box.host, box.src):
        directory.mkdir(parents=True)
    return box
