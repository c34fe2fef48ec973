"""qemu-img, run as a subprocess, with its answers parsed into models."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from pydantic import BaseModel, Field

from . import procs
from .errors import ConversionError, ConverterNotFoundError, InvalidInputError

QEMU_IMG = "qemu-img"


class ImageInfo(BaseModel):
    format: str
    virtual_size: int
    actual_size: int | None = None
    backing_filename: str | None = None
    full_backing_filename: str | None = None
    data_file: str | None = Field(default=None, description="qcow2 external data file, when the image names one.")
    extents: list[str] = Field(default_factory=list, description="VMDK extent files as qemu-img resolved them.")
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


def _run(args: list[str], *, what: str, limits: procs.Limits = procs.INSPECT) -> subprocess.CompletedProcess[str]:
    """Every qemu-img call: bounded in time, memory and CPU, and killed with its whole tree."""
    return procs.run_bounded([qemu_img_binary(), *args], limits=limits, what=f"qemu-img {what}")


def _arg(path: Path) -> str:
    # Absolute, so that qemu-img never reads a name like "nbd:host:port" or "json:{...}" as a protocol.
    return str(Path(path).absolute())


def _options(path: Path, fmt: str) -> str:
    """``path`` as a qemu block-options string (commas in the name doubled, as qemu's option syntax wants)."""
    extra = ",force_size_calc=current_size" if fmt == "vpc" else ""
    return f"driver={fmt}{extra},file.driver=file,file.filename={_arg(path).replace(',', ',,')}"


def _image(path: Path, fmt: str) -> list[str]:
    """How one image is named to qemu-img. A VHD is read at its footer's current size: for creators it does not
    know (anything but win, qem2, d2v, tap, CTXS) qemu's vpc driver otherwise takes the size from the CHS
    geometry, which can be smaller than the disk, and a source read that way agrees with its own truncated
    conversion, so no later comparison would notice."""
    return ["--image-opts", _options(path, fmt)] if fmt == "vpc" else ["-f", fmt, _arg(path)]


def backing_name(path: Path, fmt: str) -> str:
    """A backing file name that reads ``path`` as ``_image`` does (a ``json:`` name for a VHD)."""
    if fmt != "vpc":
        return _arg(path)
    return "json:" + json.dumps({"driver": "vpc", "force_size_calc": "current_size", "file": {"driver": "file", "filename": _arg(path)}})


def compare_limits(*paths: Path) -> procs.Limits:
    """compare reads every byte: a minute plus a second per 100 MiB of the larger file (at least 20 MB/s)."""
    size = max((Path(p).stat().st_size for p in paths), default=0)
    return procs.Limits(timeout_s=60.0 + size / (100 * 2**20), memory_bytes=2 * 2**30, cpu_s=None)


def _tail(text: str, lines: int = 8) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def info(path: Path, fmt: str, *, limits: procs.Limits = procs.INSPECT) -> ImageInfo:
    """``qemu-img info`` with the format given (never probed) and --force-share (never takes a lock on the source).

    Callers that read untrusted images go through ``image_safety.inspect``, which checks the headers first.
    """
    proc = _run(["info", "--output=json", "--force-share", *_image(path, fmt)], what=f"info of {Path(path).name}", limits=limits)
    if proc.returncode != 0:
        raise InvalidInputError(
            f"qemu-img cannot read {path} as {fmt}: {_tail(proc.stderr)}. "
            "Check that the file is a complete disk image of that format (a truncated or corrupt download fails here)."
        )
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise InvalidInputError(f"qemu-img info of {path} gave no JSON answer: {_tail(proc.stdout + proc.stderr)}") from None
    specific = (data.get("format-specific") or {}).get("data") or {}
    return ImageInfo(
        format=data["format"],
        virtual_size=data["virtual-size"],
        actual_size=data.get("actual-size"),
        backing_filename=data.get("backing-filename"),
        full_backing_filename=data.get("full-backing-filename"),
        data_file=specific.get("data-file"),
        extents=[e.get("filename", "") for e in specific.get("extents", []) if isinstance(e, dict)],
        dirty=bool(data.get("dirty-flag", False)),
    )


def check(path: Path, fmt: str) -> CheckResult:
    """``qemu-img check``; formats without a checker (raw, vpc) report ``supported=False``."""
    proc = _run(["check", "--output=json", "--force-share", *_image(path, fmt)], what=f"check of {Path(path).name}")
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
    proc = _run(
        ["compare", "--force-share", "--image-opts", _options(a, a_fmt), _options(b, b_fmt)]
        if "vpc" in (a_fmt, b_fmt) else ["compare", "--force-share", "-f", a_fmt, "-F", b_fmt, _arg(a), _arg(b)],
        what=f"compare of {Path(a).name} and {Path(b).name}", limits=compare_limits(a, b),
    )
    evidence = _tail(proc.stdout + proc.stderr) or f"exit {proc.returncode}"
    if proc.returncode in (0, 1):
        return CompareResult(identical=proc.returncode == 0, evidence=evidence)
    raise ConversionError(f"qemu-img compare of {a} and {b} could not run: {evidence}")


def create_qcow2(path: Path, size: int) -> Path:
    """An empty qcow2 of ``size`` guest bytes at ``path`` (an existing file there is emptied and reused)."""
    proc = _run(["create", "-q", "-f", "qcow2", _arg(path), str(size)], what=f"create of {Path(path).name}")
    if proc.returncode != 0:
        raise ConversionError(f"could not create {path}: {_tail(proc.stderr)}")
    return path


def repair_leaks(path: Path) -> None:
    """Free the clusters a killed writer allocated but never referenced (``qemu-img check -r leaks``)."""
    proc = _run(["check", "-q", "-r", "leaks", "-f", "qcow2", _arg(path)], what=f"repair of {Path(path).name}")
    if proc.returncode != 0:
        raise ConversionError(f"could not repair the leaked clusters of {path}: {_tail(proc.stderr)}")


def create_overlay(backing: Path, backing_fmt: str, overlay: Path) -> Path:
    """A qcow2 whose reads fall through to ``backing`` and whose writes stay in the overlay."""
    proc = _run(
        ["create", "-q", "-f", "qcow2", "-b", backing_name(backing, backing_fmt), "-F", backing_fmt, _arg(overlay)],
        what=f"create of overlay {overlay.name}",
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
    cmd = [qemu_img_binary(), "convert", "-W", "-m", "16", "-O", dest_fmt]
    if compress:
        cmd.append("-c")
    if progress:
        cmd.append("-p")
    return [*cmd, *(extra or []), *_image(source, source_fmt), _arg(dest)]

