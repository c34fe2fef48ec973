"""The untrusted-input corpus: hostile images, OVAs, OVFs and manifests.

Every test works in a ``Sandbox``: ``host/`` holds files an attacker wants (their bytes are a random marker),
``src/`` the hostile input, ``out/`` the output directory. After the run the sandbox is compared with its
snapshot: nothing new outside ``out/``, every pre-existing file unchanged (sources and host files), and no
output file holding the marker's bytes.

A run goes one of two ways (``via``). ``"cli"``: the real ``hyperexport`` command in its own process, against
the session's Prefect server (5-8 s a run). ``"engine"``: the same command line parsed by the CLI's own
functions, then the engine steps the flow calls (``migration.run_migration``; for ``--manifest``,
``adopt_manifest`` and what follows it) in this process, without Prefect (well under a second for a
refusal). Each attack class keeps at least one variant through the CLI (``one_through_cli``); the other
variants of the class run in the engine, with the same checks plus the error's class.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hyperexport import cancel, cli, migration
from hyperexport.errors import HyperExportError, PermanentError
from hyperexport.validate_input import name_field

# Refusals take seconds (a CLI run about 6 s, with its Prefect run); the bound catches a hang, or a refusal that
# went through the task retries (10 + 20 + 40 s of backoff), with room for a loaded two-core machine.
TIME_BOUND_S = 45.0
CLI, ENGINE = "cli", "engine"


def one_through_cli(*values: object) -> list:
    """Parameters ``(value, via)`` for the variants of one attack class: the first through the CLI, the others
    in the engine; the test id says which."""
    return [pytest.param(value, CLI if i == 0 else ENGINE, id=f"{_id(value)}-{CLI if i == 0 else ENGINE}")
            for i, value in enumerate(values)]


def _id(value: object) -> str:
    return "-".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _sha(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(2**20):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Run:
    """A run of the CLI in its own process."""

    code: int
    stdout: str
    stderr: str
    elapsed: float

    @property
    def error_line(self) -> str:
        errors = [line for line in self.stderr.splitlines() if line.startswith("hyperexport: error: ")]
        assert errors, f"no 'hyperexport: error:' line in:\n{self.stderr[-3000:]}"
        return errors[-1]


@dataclass
class EngineRun:
    """The engine steps of one command line, in this process: the error they raised (None: the run finished)."""

    error: BaseException | None
    elapsed: float

    @property
    def code(self) -> int:
        """The exit status the CLI maps this outcome to (hyperexport.cli.main)."""
        if self.error is None:
            return cli.EXIT_OK
        assert isinstance(self.error, HyperExportError), f"not an engine error: {self.error!r}"
        return cli.EXIT_BAD_INPUT if isinstance(self.error, PermanentError) else cli.EXIT_FAILED

    @property
    def error_line(self) -> str:
        """The line the CLI prints for this error, its parameter named by its flag (`` (--vm)``)."""
        assert self.error is not None, "the run was not refused"
        return f"hyperexport: error: {name_field(self.error, cli.flag_for)}"


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

    def engine(self, *args: str) -> EngineRun:
        """``hyperexport ARGS`` as the engine steps the flow calls, in this process, without Prefect."""
        cancel.reset()  # as cli._run does
        started = time.monotonic()
        try:
            parsed = cli.build_parser().parse_args(["--no-progress", *args])
            request = cli.request_from_args(parsed)
            if parsed.manifest is None:
                migration.run_migration(request)
            else:  # the convert-manifest flow's steps
                plan = migration.conversion_plan(request)
                working, disks = migration.adopt_manifest(parsed.manifest.absolute(), plan)
                migration.detect(working, request.provider)
                conversion = migration.convert(plan, working)
                if not request.convert_options.dry_run:
                    migration.validate(plan, disks, conversion)
        except Exception as error:  # noqa: BLE001 - the outcome under test
            return EngineRun(error, time.monotonic() - started)
        return EngineRun(None, time.monotonic() - started)

    def run(self, *args: str, via: str = CLI) -> Run | EngineRun:
        assert via in (CLI, ENGINE), via
        return self.cli(*args) if via == CLI else self.engine(*args)

    def migrate(self, source: str | Path, *extra: str, output: Path | str | None = None, via: str = CLI) -> Run | EngineRun:
        return self.run("--provider", "local", "--vm", str(source), "--output", str(output or self.out),
                        "--convert", "--converter", "qemu-img", *extra, via=via)

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

    def assert_migrated(self, run: Run | EngineRun) -> None:
        """Finished (exit 0) in the time bound, the sandbox untouched."""
        detail = run.stderr[-3000:] if isinstance(run, Run) else repr(run.error)
        assert run.code == cli.EXIT_OK, detail
        assert run.elapsed < TIME_BOUND_S, f"took {run.elapsed:.1f}s"
        self.assert_untouched()

    def assert_refused(self, run: Run | EngineRun, *phrases: str, error: type[PermanentError],
                       outputs_may_exist: bool = False) -> None:
        """Refused as bad input (exit 2; in the engine, an ``error``), with ``phrases`` in the message, in the
        time bound, the sandbox untouched and no output under its final name. The CLI's exit status and
        message are all a CLI run shows: the error's class is checked where the run is in-process."""
        if isinstance(run, EngineRun):
            assert isinstance(run.error, error), f"expected {error.__name__}, got {run.error!r}"
        else:
            assert run.code == cli.EXIT_BAD_INPUT, f"exit {run.code}\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}"
        assert run.code == cli.EXIT_BAD_INPUT
        line = run.error_line
        for phrase in phrases:
            assert phrase in line, f"{phrase!r} not in: {line}"
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
