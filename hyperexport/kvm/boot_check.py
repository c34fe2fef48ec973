"""Boot a converted VM under qemu-system-x86_64 and watch its serial console for a marker.

The disks are read-only under throw-away overlays, the console goes to a file in a temporary directory of
the output directory, and qemu runs bounded (time, memory, CPU) through ``procs``, killed with its tree on
timeout and on cancel. ``accel="auto"`` tries KVM first, bounded by ``kvm_probe_seconds``: some hosts open
/dev/kvm yet fail a guest at once ("KVM internal error") or hang it, and the check then boots under TCG.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .. import cancel, image_safety, procs, qemu
from ..errors import CancelledError, ConversionError, InvalidInputError, ValidationError
from ..manifest import ArtifactManifest
from .console import MAX_CONSOLE_BYTES, ConsoleWatch, read_tail
from .models import BootCheckOptions, BootCheckResult, DomainOptions, DomainPlan
from .plan import plan_domain
from .qemu_command import Accel, boot_command, qemu_system_binary

__all__ = ["BootCheckOptions", "BootCheckResult", "boot_check", "kvm_usable", "require_boot"]

MiB = 2**20
_POLL_S = 0.2
_KVM_FAILURES = ("KVM internal error", "emulation failure", "kvm run failed", "failed to initialize kvm",
                 "Could not access KVM kernel module", "KVM_CREATE_VM", "kvm_buf_set_msrs", "failed to set MSR")
# KVM failed and TCG then booted: later checks in this process skip the KVM attempt (key: qemu binary).
_kvm_broken: set[str] = set()

_CANCELLED = "the boot check was interrupted; its qemu was stopped and the output is unchanged"
Outcome = Literal["marker", "failure", "exited", "timeout", "kvm-failed", "flood"]


@dataclass
class _Attempt:
    accel: Accel
    outcome: Outcome
    elapsed: float
    tail: str
    qemu_log: str
    returncode: int | None


def kvm_usable() -> bool:
    """/dev/kvm opens read-write (whether a guest really runs on it is what the KVM attempt finds out)."""
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC))
    except OSError:
        return False
    return True


def _overlay(path: Path, virtual_size: int) -> Path:
    done = procs.run_bounded([qemu.qemu_img_binary(), "create", "-q", "-f", "qcow2", str(path), str(virtual_size)],
                             limits=procs.INSPECT, what=f"qemu-img create of {path.name}")
    if done.returncode != 0:
        raise ConversionError(f"could not create the boot check's overlay {path}: {done.stderr.strip()[-500:]}")
    return path


def _attempt(plan: DomainPlan, sizes: list[int], accel: Accel, limit_s: float, options: BootCheckOptions, work: Path) -> _Attempt:
    run_dir = Path(tempfile.mkdtemp(prefix=f"{accel}-", dir=work))
    overlays = [_overlay(run_dir / f"overlay{i}.qcow2", size) for i, size in enumerate(sizes)]
    uefi_vars = None
    if plan.firmware.kind == "uefi":
        if plan.firmware.vars_template is None:  # plan_domain always sets it for UEFI
            raise InvalidInputError(f"{plan.name} boots with UEFI but has no OVMF variables template; install Debian's ovmf")
        uefi_vars = run_dir / "uefi-vars.fd"
        shutil.copyfile(plan.firmware.vars_template, uefi_vars)
    console, qemu_log = run_dir / "console.log", run_dir / "qemu.log"
    cmd = boot_command(plan, accel=accel, overlays=overlays, console=console, memory_mib=options.memory_mib, uefi_vars=uefi_vars)
    limits = procs.Limits(timeout_s=limit_s, memory_bytes=(options.memory_mib + 3072) * MiB,
                          cpu_s=int(limit_s * (plan.vcpus + 1)) + 60)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TMPDIR": str(run_dir)}
    watch = ConsoleWatch(console, options.marker, options.failure_marker)
    start = time.monotonic()
    with open(qemu_log, "wb") as log:
        proc = procs.spawn(cmd, limits, stdout=log, stderr=subprocess.STDOUT, env=env)
    with procs.supervised(proc):
        while True:
            seen = watch.poll()
            if seen:
                outcome: Outcome = seen
            elif proc.poll() is not None:
                outcome = watch.poll() or "exited"
            elif accel == "kvm" and any(sign in read_tail(qemu_log, 4000) for sign in _KVM_FAILURES):
                outcome = "kvm-failed"
            elif watch.flooded():
                outcome = "flood"
            elif time.monotonic() - start > limit_s:
                outcome = "timeout"
            elif cancel.wait(_POLL_S):
                raise CancelledError(_CANCELLED)
            else:
                continue
            break
    elapsed = time.monotonic() - start
    if outcome != "marker" and (cancel.cancelled() or procs.was_terminated(proc)):
        raise CancelledError(_CANCELLED)
    return _Attempt(accel, outcome, elapsed, watch.tail(options.tail_lines), read_tail(qemu_log, 1500).strip(), proc.returncode)


def _first_accel(options: BootCheckOptions) -> Accel:
    if options.accel == "tcg":
        return "tcg"
    if options.accel == "kvm":
        if not kvm_usable():
            raise InvalidInputError("accel kvm was asked for, but /dev/kvm cannot be opened; use accel auto or tcg")
        return "kvm"
    return "kvm" if kvm_usable() and qemu_system_binary() not in _kvm_broken else "tcg"


def _kvm_fallback_reason(attempt: _Attempt, probe_s: float) -> str | None:
    """Why a KVM attempt says nothing about the guest (so TCG must try), or None when its verdict stands."""
    if attempt.outcome == "kvm-failed":
        line = next((l for l in attempt.qemu_log.splitlines() if any(s in l for s in _KVM_FAILURES)), "KVM failed")
        return f"KVM failed ({line.strip()[:200]}); booted under TCG instead"
    if attempt.outcome == "timeout":
        return f"no marker under KVM within {probe_s:.0f}s (KVM may hang on this host); booted under TCG instead"
    if attempt.outcome == "exited" and attempt.returncode:
        said = (attempt.qemu_log.splitlines() or [""])[-1].strip()[:200]
        return f"qemu with KVM exited with status {attempt.returncode} ({said}); booted under TCG instead"
    return None


_ADVICE = (
    "What to do: read the console lines above. A guest that prints nothing on its serial console needs "
    "console=ttyS0 on its kernel command line (the check watches only ttyS0), or pass a marker it does print; "
    "'not a bootable disk' or 'No bootable device' means the boot sector or partition table did not survive the "
    "conversion; 'Access Denied' or 'Security Violation' from UEFI means secure boot refused an unsigned boot "
    "loader (boot it through a signed shim, or define the domain without secure boot); a kernel that cannot find its root disk lacks virtio drivers (convert with --fix, or set virtio "
    "off for SATA disks)."
)


def _verdict(plan: DomainPlan, attempt: _Attempt, options: BootCheckOptions, limit_s: float, fallback: str | None) -> BootCheckResult:
    def result(passed: bool, message: str) -> BootCheckResult:
        return BootCheckResult(passed=passed, accel=attempt.accel, seconds=round(attempt.elapsed, 2),
                               seconds_to_marker=round(attempt.elapsed, 2) if passed else None,
                               console_tail=attempt.tail, kvm_fallback=fallback, message=message)

    if attempt.outcome == "marker":
        return result(True, f"{plan.name} booted under {attempt.accel.upper()}: its serial console showed the "
                                       f"marker after {attempt.elapsed:.1f}s")
    what = {
        "timeout": f"no console line matched the marker {options.marker!r} within {limit_s:.0f}s",
        "failure": f"after {attempt.elapsed:.1f}s the console showed a line after which the guest gets no further "
                   f"(failure marker {options.failure_marker!r})",
        "exited": f"qemu stopped after {attempt.elapsed:.1f}s (status {attempt.returncode}) before any console line "
                  f"matched the marker {options.marker!r}; the guest powered off, rebooted or crashed",
        "kvm-failed": "KVM failed to run the guest (pass accel tcg, or auto to fall back by itself)",
        "flood": f"the guest wrote more than {MAX_CONSOLE_BYTES // MiB} MiB to its serial console",
    }[attempt.outcome]
    qemu_said = f"\nqemu said: {attempt.qemu_log[-800:]}" if attempt.returncode and attempt.qemu_log else ""
    return result(False, f"the boot check of {plan.name} failed under {attempt.accel.upper()}: {what}.{qemu_said}\n"
                         f"Last console lines:\n{attempt.tail or '(the serial console stayed empty)'}\n{_ADVICE}")


def boot_check(
    disk_paths: Sequence[Path],
    manifest: ArtifactManifest,
    options: BootCheckOptions | None = None,
    *,
    domain: DomainOptions | None = None,
    work_dir: Path | None = None,
) -> BootCheckResult:
    """Boot the converted ``disk_paths`` (manifest disk order) with the devices of their domain.

    ``work_dir`` (default: the first disk's directory, i.e. the output directory) receives a temporary
    directory for the overlays and the console file, removed afterwards.
    """
    options = options or BootCheckOptions()
    plan = plan_domain(manifest, disk_paths, domain)
    if sum(disk.bus == "sata" for disk in plan.disks) > 6:
        raise InvalidInputError("the boot check attaches at most 6 SATA disks; boot-check with virtio on, or fewer disks")
    sizes = [image_safety.inspect(disk.path, disk.format).virtual_size for disk in plan.disks]
    work = Path(work_dir) if work_dir else plan.disks[0].path.parent
    accel = _first_accel(options)
    with tempfile.TemporaryDirectory(prefix=".boot-check-", dir=work) as tmp:
        limit = options.time_limit_seconds
        if options.accel == "auto" and accel == "kvm":
            probe = min(options.kvm_probe_seconds, limit)
            first = _attempt(plan, sizes, "kvm", probe, options, Path(tmp))
            fallback = _kvm_fallback_reason(first, probe)
            if fallback is None:
                return _verdict(plan, first, options, probe, None)
            second = _attempt(plan, sizes, "tcg", limit, options, Path(tmp))
            if second.outcome == "marker":
                _kvm_broken.add(qemu_system_binary())
            return _verdict(plan, second, options, limit, fallback)
        return _verdict(plan, _attempt(plan, sizes, accel, limit, options, Path(tmp)), options, limit, None)


def require_boot(result: BootCheckResult) -> BootCheckResult:
    """``result`` when it passed; otherwise its message as a ValidationError."""
    if not result.passed:
        raise ValidationError(result.message)
    return result
