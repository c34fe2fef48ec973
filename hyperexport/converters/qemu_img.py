"""Format conversion with qemu-img alone: fast, and it never touches the guest."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from .. import qemu
from .. import procs
from ..errors import ConversionError, InsufficientSpaceError
from ..fsutil import commit, partial_path
from ..manifest import load_manifest
from ..overlap import same_file
from ..models import ConversionResult, ConverterCapabilities, ConverterConfig, ConvertOptions, DiskFormat, TargetFormat
from ..models.provider_name import PROVIDER_NAMES
from .base import LogLine, discard, output_path
from .output import PROGRESS
from .process import failure, run_streaming


class QemuImgConverter:
    name = "qemu-img"

    def __init__(self, config: ConverterConfig | None = None, log: LogLine = discard) -> None:
        self.config = config or ConverterConfig()
        self.log = log

    def validate(self) -> None:
        qemu.qemu_img_binary()

    def version(self) -> str:
        proc = procs.run_bounded([qemu.qemu_img_binary(), "--version"], limits=procs.INSPECT, what="qemu-img --version")
        return proc.stdout.splitlines()[0].strip() if proc.stdout else "unknown"

    def capabilities(self) -> ConverterCapabilities:
        return ConverterCapabilities(
            supported_source_formats=list(DiskFormat),
            supported_target_formats=list(TargetFormat),
            supports_driver_injection=False,
            supports_os_detection=False,
            supports_validation=True,
            supported_providers=list(PROVIDER_NAMES),
        )

    def convert(self, manifest_path: Path, options: ConvertOptions) -> ConversionResult:
        started = time.monotonic()
        manifest = load_manifest(manifest_path)
        out_dir = Path(manifest.output.directory or manifest_path.parent)
        deadline = started + self.config.timeout_seconds
        outputs = []
        for disk in manifest.disks:
            dest = output_path(out_dir, disk.id, options.target_format.value)
            outputs.append(dest)
            if _already_written(Path(disk.local_path), disk.source_format.value, dest, options):
                self.log(f"qemu-img: {dest} was written while it downloaded; nothing to convert")
                continue
            self.log(f"qemu-img: {disk.local_path} ({disk.source_format.value}) -> {dest}")
            if options.dry_run:
                continue
            convert_disk(
                Path(disk.local_path),
                disk.source_format.qemu_format,
                dest,
                options,
                timeout=max(1.0, deadline - time.monotonic()),
                log=self.log,
                memory_bytes=self.config.qemu_img_memory_bytes,
            )
        return ConversionResult(
            success=True,
            converted_files=[] if options.dry_run else outputs,
            duration_seconds=time.monotonic() - started,
            metadata={"converter": self.name, "dry_run": options.dry_run, "planned_files": [str(p) for p in outputs]},
        )


def _already_written(source: Path, source_format: str, dest: Path, options: ConvertOptions) -> bool:
    """A disk streamed into its output (``streaming``) is the output: converting it onto itself would only
    copy it again."""
    return source_format == options.target_format.value and not options.dry_run and same_file(source, dest)


def convert_disk(
    source: Path, source_fmt: str, dest: Path, options: ConvertOptions, *, timeout: float, log: LogLine = discard,
    stop: threading.Event | None = None, memory_bytes: int | None = ConverterConfig().qemu_img_memory_bytes,
) -> Path:
    """qemu-img convert into a partial file, renamed to ``dest`` only when complete; its address space is
    capped at ``memory_bytes`` (None: uncapped).

    Run through ``process.run_streaming`` (not ``qemu.convert``) so that a timeout, a
    cancellation or a shutdown ends it at once, like every converter process.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(dest)
    tmp.unlink(missing_ok=True)
    last = [-10]

    def on_line(text: str) -> None:
        progress = PROGRESS.search(text)
        if progress is None:
            log(f"qemu-img: {text.strip()}")
            return
        percent = round(float(progress[1]))
        if percent - last[0] >= 10 or (percent >= 100 > last[0]):
            last[0] = percent
            log(f"qemu-img: {dest.name} {percent}%")

    compress = options.compression_level > 0 and options.target_format is TargetFormat.qcow2
    cmd = qemu.convert_command(
        source, source_fmt, tmp, options.target_format.value, compress=compress, progress=True, extra=options.custom_args
    )
    try:
        finished = run_streaming(cmd, env=None, cwd=None, timeout=timeout, on_line=on_line, stop=stop, memory_bytes=memory_bytes)
        if finished.code != 0:
            what = f"qemu-img convert {source} ({source_fmt}) -> {options.target_format.value}"
            if any("No space left on device" in line for line in finished.tail.lines):
                raise InsufficientSpaceError(
                    f"{what} ran out of space writing {tmp}; free space there or choose another output directory",
                    field="export.output_dir",
                )
            raise failure(what, finished)
        commit(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if not dest.exists():
        raise ConversionError(f"qemu-img reported success but {dest} is missing")
    os.chmod(dest, 0o644)
    return dest
