"""qemu-img, run as a subprocess, with its answers parsed into models."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Callable

from pydantic import BaseModel

from .errors import ConversionError, ConverterNotFoundError, InvalidInputError

QEMU_IMG = "qemu-img"
_PROGRESS = re.compile(r"\((\d+(?:\.\d+)?)/100%\)")


class ImageInfo(BaseModel):
    format: str
    virtual_size: int
    actual_size: int | None = None
    backing_filename: str | None = None
    dirty: bool = False


class CheckResult(BaseModel):
    clean: bool
    supported: bool
    errors: int = 0
    leaks: int = 0
    evidence: str


class CompareResult(BaseModel):
    identical: bool
    evidence: str


def qemu_img_binary() -> str:
    found = shutil.which(QEMU_IMG)
    if found is None:
        raise ConverterNotFoundError(
            "qemu-img is not installed; install it with 'apt-get install qemu-utils' (Debian/Ubuntu) "
            "or 'dnf install qemu-img' (Fedora/RHEL)"
        )
    return found


def _run(args: list[str], *, what: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([qemu_img_binary(), *args], capture_output=True, text=True, check=False)


def _tail(text: str, lines: int = 8) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def info(path: Path, fmt: str | None = None) -> ImageInfo:
    args = ["info", "--output=json"]
    if fmt:
        args += ["-f", fmt]
    proc = _run([*args, str(path)], what="info")
    if proc.returncode != 0:
        raise InvalidInputError(
            f"qemu-img cannot read {path}{f' as {fmt}' if fmt else ''}: {_tail(proc.stderr)}. "
            "Check that the file is a complete disk image of that format (a truncated or corrupt download fails here)."
        )
    data = json.loads(proc.stdout)
    return ImageInfo(
        format=data["format"],
        virtual_size=data["virtual-size"],
        actual_size=data.get("actual-size"),
        backing_filename=data.get("backing-filename"),
        dirty=bool(data.get("dirty-flag", False)),
    )


def check(path: Path, fmt: str) -> CheckResult:
    """``qemu-img check``; formats without a checker (raw, vpc) report ``supported=False``."""
    proc = _run(["check", "--output=json", "-f", fmt, str(path)], what="check")
    text = (proc.stdout + proc.stderr).strip()
    if proc.returncode == 63 or "does not support checks" in text:
        return CheckResult(clean=True, supported=False, evidence=f"{fmt} has no consistency checker in qemu-img")
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return CheckResult(clean=False, supported=True, errors=1, evidence=_tail(text) or f"exit {proc.returncode}")
    errors = int(data.get("corruptions", 0)) + int(data.get("check-errors", 0))
    leaks = int(data.get("leaks", 0))
    clean = proc.returncode == 0 and errors == 0
    summary = f"exit {proc.returncode}; corruptions={data.get('corruptions', 0)}, check-errors={data.get('check-errors', 0)}, leaks={leaks}"
    return CheckResult(clean=clean, supported=True, errors=errors, leaks=leaks, evidence=summary)


def compare(a: Path, a_fmt: str, b: Path, b_fmt: str) -> CompareResult:
    proc = _run(["compare", "-f", a_fmt, "-F", b_fmt, str(a), str(b)], what="compare")
    evidence = _tail(proc.stdout + proc.stderr) or f"exit {proc.returncode}"
    if proc.returncode in (0, 1):
        return CompareResult(identical=proc.returncode == 0, evidence=evidence)
    raise ConversionError(f"qemu-img compare of {a} and {b} could not run: {evidence}")


def create_overlay(backing: Path, backing_fmt: str, overlay: Path) -> Path:
    """A qcow2 whose reads fall through to ``backing`` and whose writes stay in the overlay."""
    proc = _run(
        ["create", "-q", "-f", "qcow2", "-b", str(backing.absolute()), "-F", backing_fmt, str(overlay)],
        what="create",
    )
    if proc.returncode != 0:
        raise ConversionError(f"could not create overlay {overlay} on {backing}: {_tail(proc.stderr)}")
    return overlay


def convert_command(
    source: Path,
    source_fmt: str,
    dest: Path,
    dest_fmt: str,
    *,
    compress: bool = False,
    progress: bool = False,
    extra: list[str] | None = None,
) -> list[str]:
    # -W: out-of-order writes; -m 16: sixteen coroutines. Together the fastest local copy qemu-img offers.
    cmd = [qemu_img_binary(), "convert", "-W", "-m", "16", "-f", source_fmt, "-O", dest_fmt]
    if compress:
        cmd.append("-c")
    if progress:
        cmd.append("-p")
    return [*cmd, *(extra or []), str(source), str(dest)]


def convert(
    source: Path,
    source_fmt: str,
    dest: Path,
    dest_fmt: str,
    *,
    compress: bool = False,
    extra: list[str] | None = None,
    on_percent: Callable[[float], None] | None = None,
    timeout: float | None = None,
) -> None:
    cmd = convert_command(source, source_fmt, dest, dest_fmt, compress=compress, progress=on_percent is not None, extra=extra)
    try:
        if on_percent is None:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
            stderr = proc.stderr
            code = proc.returncode
        else:
            code, stderr = _convert_with_progress(cmd, on_percent, timeout)
    except subprocess.TimeoutExpired:
        raise ConversionError(f"qemu-img convert of {source} ran past its {timeout:.0f}s timeout") from None
    if code != 0:
        raise ConversionError(f"qemu-img convert {source} ({source_fmt}) -> {dest_fmt} failed: {_tail(stderr)}")


def _convert_with_progress(cmd: list[str], on_percent: Callable[[float], None], timeout: float | None) -> tuple[int, str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    fired = threading.Event()

    def kill() -> None:
        fired.set()
        proc.kill()

    timer = threading.Timer(timeout, kill) if timeout else None
    if timer:
        timer.start()
    try:
        buffer = ""
        while chunk := proc.stdout.read(64):
            buffer += chunk
            matches = _PROGRESS.findall(buffer)
            if matches:
                on_percent(float(matches[-1]))
                buffer = buffer[-32:]
        stderr = proc.stderr.read()
        code = proc.wait()
    finally:
        if timer:
            timer.cancel()
    if fired.is_set():
        raise subprocess.TimeoutExpired(cmd, timeout or 0)
    return code, stderr
