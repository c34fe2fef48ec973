"""KVM or TCG for the libguestfs appliance, decided by one bounded launch.

Some hosts open /dev/kvm and create VMs, yet a KVM guest never boots: it fails at once (a
KVM MSR assertion, this CI machine) or hangs at "Booting from ROM" until libguestfs gives up
after 20 minutes. ``HYPEREXPORT_GUESTFS_ACCEL`` chooses: ``kvm`` trusts KVM (no probe: a hang
then lasts until the converter's timeout), ``tcg`` never uses it, ``auto`` (the default)
launches a scratch-disk appliance with KVM once, bounded by ``HYPEREXPORT_GUESTFS_PROBE_SECONDS``
(60), and uses TCG when it does not come up in time. The verdict is cached per boot and per
hypervisor binary in ``$XDG_CACHE_HOME/hyperexport/guestfs-accel.json``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

from .. import procs
from ..errors import InvalidInputError, ResourceLimitError
from ..fsutil import write_json_atomic
from .base import LogLine, discard

ACCEL_ENV = "HYPEREXPORT_GUESTFS_ACCEL"
PROBE_ENV = "HYPEREXPORT_GUESTFS_PROBE_SECONDS"
CHOICES = ("auto", "kvm", "tcg")
DEFAULT_PROBE_SECONDS = 60.0
_QEMU = "/usr/bin/qemu-system-x86_64"
_PROBE = (
    "import guestfs\n"
    "g = guestfs.GuestFS(python_return_dict=True)\n"
    "g.add_drive_scratch(16 * 1024 * 1024)\n"
    "g.launch()\n"
    "g.shutdown()\n"
    "g.close()\n"
)
_memo: dict[str, str] = {}
_memo_lock = threading.Lock()


def requested(env: Mapping[str, str]) -> str:
    value = env.get(ACCEL_ENV, "").strip().lower() or "auto"
    if value not in CHOICES:
        raise InvalidInputError(
            f"{ACCEL_ENV}={env.get(ACCEL_ENV)!r} is not one of {', '.join(CHOICES)}; "
            "use auto (probe KVM once), kvm or tcg"
        )
    return value


def choose(env: Mapping[str, str], kvm_opens: bool, probe_env: dict[str, str], log: LogLine = discard) -> str:
    """``kvm`` or ``tcg`` for this run's appliance. ``probe_env`` is the environment hyper2kvm will get."""
    choice = requested(env)
    if choice != "auto":
        return choice
    if "force_tcg" in env.get("LIBGUESTFS_BACKEND_SETTINGS", "") or not kvm_opens:
        return "tcg"
    key = _cache_key(probe_env)
    with _memo_lock:
        verdict = _memo.get(key) or _read_cache(key)
        if verdict is None:
            verdict = _probe(probe_env, _probe_seconds(env), log)
            _write_cache(key, verdict)
        _memo[key] = verdict
    return verdict


def remember(probe_env: Mapping[str, str], verdict: str) -> None:
    """A real launch proved the probe wrong (KVM failed after all): later runs go straight to TCG."""
    key = _cache_key(probe_env)
    with _memo_lock:
        _memo[key] = verdict
        _write_cache(key, verdict)


def _probe(env: dict[str, str], seconds: float, log: LogLine) -> str:
    log(f"guest fixes: checking that a KVM appliance boots on this host (at most {seconds:.0f}s, once per boot)")
    try:
        proc = procs.run_bounded(
            [sys.executable, "-c", _PROBE],
            limits=procs.Limits(timeout_s=seconds, memory_bytes=None, cpu_s=None),
            what="the libguestfs KVM probe", env=env,
        )
    except ResourceLimitError:
        log(f"guest fixes: the KVM appliance did not boot in {seconds:.0f}s; using TCG (slower, but it finishes)")
        return "tcg"
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        log(f"guest fixes: the KVM appliance failed to start ({reason}); using TCG")
        return "tcg"
    return "kvm"


def _probe_seconds(env: Mapping[str, str]) -> float:
    raw = env.get(PROBE_ENV, "")
    try:
        seconds = float(raw) if raw else DEFAULT_PROBE_SECONDS
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        raise InvalidInputError(f"{PROBE_ENV}={raw!r} must be a number of seconds above 0 (default {DEFAULT_PROBE_SECONDS:.0f})")
    return seconds


def _cache_key(env: Mapping[str, str]) -> str:
    """Same boot, same hypervisor binary (path and mtime), same libguestfs backend: same verdict."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = "unknown-boot"
    hv = env.get("LIBGUESTFS_HV") or _QEMU
    try:
        stamp = os.stat(hv).st_mtime_ns
    except OSError:
        stamp = 0
    return f"{boot}|{hv}|{stamp}|{env.get('LIBGUESTFS_BACKEND', '')}|{env.get('LIBGUESTFS_BACKEND_SETTINGS', '')}"


def _cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hyperexport" / "guestfs-accel.json"


def _read_cache(key: str) -> str | None:
    try:
        verdict = json.loads(_cache_file().read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    return verdict if verdict in ("kvm", "tcg") else None


def _write_cache(key: str, verdict: str) -> None:
    path = _cache_file()
    try:
        entries = json.loads(path.read_text())
        entries = entries if isinstance(entries, dict) else {}
    except (OSError, ValueError):
        entries = {}
    boot = key.split("|", 1)[0]
    entries = {k: v for k, v in entries.items() if k.startswith(boot + "|")}  # older boots' verdicts mean nothing
    entries[key] = verdict
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, entries)
    except OSError:
        pass  # an unwritable cache costs one probe per process, nothing more
