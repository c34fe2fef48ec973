"""hyperexport against virt-v2v on the bootable sample guest: wall time, output identity, does it boot.

    .venv/bin/python bench/v2v_bench.py [--input disk|ova] [--v2v-timeout 900] [--accel tcg|auto]

One sample (the 64 MiB bootable Linux guest of hyperexport.kvm, as a raw disk and as an OVA of that
same disk), one run of each:
  - virt-v2v (Debian's package) -i disk|-i ova -o local -of qcow2;
  - hyperexport --convert --fix (the baseline of the ratios: both tools then modify the guest);
  - hyperexport --convert (no fix: its output must equal the source byte for byte).
Each output is compared with the source raw (qemu-img compare) and boot-checked with
hyperexport.kvm.boot_check (TCG by default: /dev/kvm is unreliable on CI hosts). libguestfs, which
virt-v2v and hyper2kvm's --fix both use, gets the environment hyperexport's converter decides on
(LIBGUESTFS_BACKEND=direct, plus force_tcg when a KVM appliance does not come up). Every child runs
bounded through hyperexport.procs and is killed with its tree on timeout, Ctrl-C or exit.

A benchmark, not a test: nothing is asserted. When virt-v2v refuses the guest (its inspection may not
take a busybox initramfs for an operating system), the table says so and its last lines say why.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from hyperexport import procs, qemu
from hyperexport.converters import accel
from hyperexport.converters.guestfs_env import guestfs_environment, kvm_usable
from hyperexport.errors import HyperExportError
from hyperexport.kvm import BootCheckOptions, boot_check
from hyperexport.kvm.sample_ova import SAMPLE_MAC
from hyperexport.kvm.sample_guest import make_bootable_guest
from hyperexport.manifest import build_manifest
from hyperexport.models import DiskFormat, ExportResult, StagedDisk
from hyperexport.models.export import VmInfo
from hyperexport.samples import make_ova

MiB = 2**20
HYPEREXPORT = Path(sys.executable).with_name("hyperexport")
NAME = "bootable-sample"


@dataclass
class Run:
    tool: str
    command: list[str]
    seconds: float | None = None
    step_seconds: float | None = None  # hyperexport: its report's convert step (no Prefect start-up, no export)
    status: str = "not run"
    ok: bool = False
    output: Path | None = None
    identical: str = "n.a."
    boots: str = "n.a."
    notes: list[str] = field(default_factory=list)


def log(message: str) -> None:
    print(f"# {message}", flush=True)


def run_timed(run: Run, env: dict[str, str], timeout_s: float, log_path: Path, cwd: Path) -> int | None:
    """Run ``run.command`` bounded (its whole session killed past ``timeout_s``); output to ``log_path``."""
    limits = procs.Limits(timeout_s=timeout_s, memory_bytes=None, cpu_s=None)  # qemu maps far more than it uses
    started = time.monotonic()
    with open(log_path, "wb") as out:
        proc = procs.spawn(run.command, limits, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    code: int | None
    with procs.supervised(proc):
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            code = None
    run.seconds = time.monotonic() - started
    if code is None:
        run.status = "timeout"
        run.notes.append(f"stopped after its {timeout_s:.0f}s limit (its process tree was killed)")
    elif code != 0:
        run.status = f"failed (exit {code})"
    return code


def tail(path: Path, lines: int) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(l.rstrip() for l in text.splitlines()[-lines:] if l.strip())


def guestfs_env(work: Path) -> tuple[dict[str, str], str]:
    """The environment hyper2kvm's --fix would give libguestfs here, and which accelerator that is."""
    base = dict(os.environ)
    probe_env = {**base, **guestfs_environment(work, force_tcg=False, base=base)}
    verdict = accel.choose(base, kvm_usable(), probe_env, log)
    return {**base, **guestfs_environment(work, force_tcg=verdict == "tcg", base=base)}, verdict


def sample_manifest(raw: Path):
    """The manifest boot_check plans the domain from: the sample's hardware, one disk, qcow2 output."""
    size = raw.stat().st_size
    staged = StagedDisk(id="disk-0", path=raw, format=DiskFormat.raw, size_bytes=size, virtual_size_bytes=size)
    export = ExportResult(provider="local", export_method="bench", vm=VmInfo(vm_name=NAME, cpu=1, mem_gb=1),
                          disks=[{"id": "disk-0", "location": str(raw), "format": DiskFormat.raw, "file_name": raw.name}])
    return build_manifest(export, [staged], output_dir=raw.parent)


def identity(run: Run, source: Path) -> None:
    if run.output is None:
        return
    try:
        result = qemu.compare(source, "raw", run.output, "qcow2")
    except HyperExportError as error:
        run.identical = "error"
        run.notes.append(f"qemu-img compare failed: {error}")
        return
    run.identical = "yes" if result.identical else "no (modified)"
    if not result.identical:
        run.notes.append(f"qemu-img compare: {result.evidence.splitlines()[-1] if result.evidence else 'differs'}")


def boots(run: Run, manifest, options: BootCheckOptions, work: Path) -> None:
    if run.output is None:
        return
    try:
        verdict = boot_check([run.output], manifest, options, work_dir=work)
    except HyperExportError as error:
        run.boots = "error"
        run.notes.append(f"boot check could not run: {error}")
        return
    if verdict.passed:
        run.boots = f"yes, {verdict.seconds_to_marker:.1f}s ({verdict.accel})"
    else:
        run.boots = f"no ({verdict.accel}, {verdict.seconds:.0f}s)"
        run.notes.append("boot check: " + verdict.message.split("\n")[0])
        if verdict.console_tail:
            run.notes.append("console tail:\n" + "\n".join("    " + l for l in verdict.console_tail.splitlines()[-6:]))


def hyperexport_run(fix: bool, source: Path, work: Path, env: dict[str, str], timeout_s: float) -> Run:
    out = work / ("hx-fix" if fix else "hx-convert")
    cmd = [str(HYPEREXPORT), "--provider", "local", "--vm", str(source), "--output", str(out), "--convert",
           "--no-progress", "--timeout", str(int(timeout_s))] + (["--fix"] if fix else [])
    run = Run("hyperexport --convert" + (" --fix" if fix else ""), cmd)
    log_path = work / f"{out.name}.log"
    log(f"running {' '.join(cmd[1:])}")
    code = run_timed(run, env, timeout_s + 60, log_path, work)
    disks = sorted(out.glob("*.qcow2"))
    if code == 0 and len(disks) == 1:
        run.ok, run.output, run.status = True, disks[0], "converted"
        run.step_seconds = convert_step_seconds(out / "migration-report.json")
    else:
        run.notes.append(f"{len(disks)} qcow2 in {out}; last lines:\n" + tail(log_path, 12))
    return run


def convert_step_seconds(report: Path) -> float | None:
    try:
        timings = json.loads(report.read_text()).get("timings", [])
    except (OSError, ValueError, AttributeError):
        return None
    seconds = [t.get("seconds") for t in timings if isinstance(t, dict) and t.get("step") == "convert"]
    return float(seconds[0]) if seconds and isinstance(seconds[0], (int, float)) else None


def v2v_run(mode: str, raw: Path, ova: Path, work: Path, env: dict[str, str], timeout_s: float) -> Run:
    out = work / "v2v"
    out.mkdir()
    source = raw if mode == "disk" else ova
    cmd = ["virt-v2v", "-i", mode, str(source), "-o", "local", "-os", str(out), "-of", "qcow2", "-on", NAME]
    run = Run(f"virt-v2v -i {mode}", cmd)
    if not any((Path(d) / "virt-v2v").exists() for d in os.environ.get("PATH", "").split(os.pathsep)):
        run.status = "not installed"
        run.notes.append("virt-v2v is not installed: apt-get install virt-v2v nbdkit (make bench-deps)")
        return run
    log(f"running {' '.join(cmd)}")
    log_path = work / "v2v.log"
    code = run_timed(run, env, timeout_s, log_path, work)
    disks = sorted(p for p in out.iterdir() if p.suffix != ".xml")
    if code == 0 and len(disks) == 1:
        run.ok, run.output, run.status = True, disks[0], "converted"
        run.notes.append("virt-v2v always converts the guest (drivers, initramfs, fstab): its output is not the source")
        return run
    text = tail(log_path, 40)
    reason = [l for l in text.splitlines() if "virt-v2v: error:" in l or l.startswith("Inspection field")]
    if code is not None and reason:
        run.status = "refused"
        run.notes.append("virt-v2v refused the guest: " + " ".join(l.replace("virt-v2v: error: ", "") for l in reason))
    run.notes.append("its last lines:\n" + "\n".join("    " + l for l in text.splitlines()[-10:]
                                                      if not l.startswith(("If reporting bugs", "  virt-v2v -v -x"))))
    return run


def table(runs: list[Run], baseline: Run) -> None:
    rows = [("tool", "result", "wall s", "ratio", "convert step s", "identical to source", "boots")]
    for run in runs:
        ratio = "n.a."
        if run.ok and baseline.ok and run.seconds is not None and baseline.seconds:
            ratio = f"{run.seconds / baseline.seconds:.2f}"
        wall = "n.a." if run.seconds is None else f"{run.seconds:.1f}"
        step = "n.a." if run.step_seconds is None else f"{run.step_seconds:.1f}"
        rows.append((run.tool, run.status, wall, ratio, step, run.identical, run.boots))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print(f"ratio: wall time / {baseline.tool}'s (converted runs only), same sample, same environment, one run each;\n"
          "wall s of hyperexport includes its temporary Prefect server; convert step s is the step alone (its report)")
    for run in runs:
        for note in run.notes:
            print(f"{run.tool}: {note}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", choices=["disk", "ova"], default="disk",
                        help="what both tools get: the raw disk (virt-v2v -i disk) or the OVA (-i ova)")
    parser.add_argument("--v2v-timeout", type=float, default=900.0, help="seconds virt-v2v may take")
    parser.add_argument("--hx-timeout", type=float, default=900.0, help="seconds each hyperexport run may take")
    parser.add_argument("--accel", choices=["tcg", "auto", "kvm"], default="tcg", help="the boot check's accelerator")
    parser.add_argument("--boot-timeout", type=float, default=180.0)
    args = parser.parse_args()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: (procs.terminate_all(), sys.exit(128 + signum)))
    try:
        with tempfile.TemporaryDirectory(prefix="v2v-bench-", dir=os.environ.get("BENCH_DIR")) as tmp:
            return bench(Path(tmp), args)
    finally:
        procs.terminate_all()


def bench(work: Path, args: argparse.Namespace) -> int:
    raw = make_bootable_guest(work / f"{NAME}.raw", 64)
    ova = make_ova([raw], work / f"{NAME}.ova", NAME, cpus=2, mem_mib=1024, macs=(SAMPLE_MAC,), efi=False,
                   scsi_controller="lsilogic", nic_model="vmxnet3")
    env, verdict = guestfs_env(work)
    log(f"sample: {raw.name} (64 MiB raw) and {ova.name} (same disk); input: {args.input}; "
        f"libguestfs appliance: {verdict.upper()} (LIBGUESTFS_BACKEND={env['LIBGUESTFS_BACKEND']}"
        f"{', LIBGUESTFS_BACKEND_SETTINGS=' + env['LIBGUESTFS_BACKEND_SETTINGS'] if 'LIBGUESTFS_BACKEND_SETTINGS' in env else ''})")
    source = raw if args.input == "disk" else ova
    fix = hyperexport_run(True, source, work, env, args.hx_timeout)
    plain = hyperexport_run(False, source, work, env, args.hx_timeout)
    v2v = v2v_run(args.input, raw, ova, work, env, args.v2v_timeout)
    runs = [v2v, fix, plain]
    manifest = sample_manifest(raw)
    options = BootCheckOptions(accel=args.accel, time_limit_seconds=args.boot_timeout)
    for run in runs:
        identity(run, raw)
        log(f"boot check of {run.tool}'s output" + ("" if run.output else ": no output"))
        boots(run, manifest, options, work)
    fix.notes.insert(0, "guest fixes applied: its output is expected to differ from the source")
    print()
    table(runs, fix)
    return 0


if __name__ == "__main__":
    sys.exit(main())
