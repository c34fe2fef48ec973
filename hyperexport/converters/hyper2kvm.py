"""hyper2kvm as the converter, with its 0.2.x traps guarded.

What hyper2kvm 0.2.1 gets wrong, and what we do instead:
- its CONVERT ignores ``source_format`` and lets qemu-img guess (a fixed VHD is
  read as raw, its footer lands in the disk) and runs ``-t none -T none``
  without ``-W``/``-m``: we run ``qemu-img convert -W -m 16 -f <format>``
  ourselves and never enable its CONVERT;
- its FIX edits the input disk in place: it gets a qcow2 overlay backed by
  the source, and the output is converted from the overlay;
- its VALIDATE passes corrupt images: never enabled; hyperexport.validation
  judges the outputs;
- its FIX sub-step ``remove_vmware_tools`` hangs forever (a FUSE mount_local
  thread against umount_local): kept off.
What only hyper2kvm does — loading the manifest, inspecting and fixing the
guest, its report — it still does. Without guest fixes it loads and reports
on the manifest while qemu-img converts, so the default path costs no more
than qemu-img alone.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from .. import procs, qemu
from ..errors import ConverterFailedError
from ..fsutil import write_json_atomic
from ..manifest import ArtifactManifest, ManifestOutput, ManifestPipeline, PipelineStage, fix_stage, load_manifest
from ..models import ConversionResult, ConverterCapabilities, ConverterConfig, ConvertOptions, DiskFormat, TargetFormat
from ..models.provider_name import PROVIDER_NAMES
from .base import LogLine, discard, output_path
from .binary import auto_detect_binary, validate_binary
from . import accel
from .guestfs_env import LAUNCH_FAILURE, guestfs_environment, kvm_usable
from .hyper2kvm_log import Hyper2KVMLog
from .process import Finished, failure, run_streaming
from .qemu_img import convert_disk

BINARY_NAME = "hyper2kvm"
WORK_DIR_NAME = "hyper2kvm"


class Hyper2KVMConverter:
    name = "hyper2kvm"

    def __init__(self, config: ConverterConfig | None = None, log: LogLine = discard) -> None:
        self.config = config or ConverterConfig()
        self.log = log

    def binary(self) -> Path:
        if self.config.binary_path is not None:
            return validate_binary(self.config.binary_path)
        return validate_binary(auto_detect_binary(BINARY_NAME))

    def validate(self) -> None:
        self.binary()
        qemu.qemu_img_binary()

    def version(self) -> str:
        proc = procs.run_bounded([str(self.binary()), "--version"], limits=procs.INSPECT, what="hyper2kvm --version")
        return (proc.stdout or proc.stderr).strip().splitlines()[-1] if (proc.stdout or proc.stderr) else "unknown"

    def capabilities(self) -> ConverterCapabilities:
        return ConverterCapabilities(
            supported_source_formats=list(DiskFormat),
            supported_target_formats=[TargetFormat.qcow2, TargetFormat.raw, TargetFormat.vmdk],
            supports_driver_injection=True,
            supports_os_detection=True,
            supports_validation=True,
            supported_providers=list(PROVIDER_NAMES),
        )

    def convert(self, manifest_path: Path, options: ConvertOptions) -> ConversionResult:
        started = time.monotonic()
        deadline = started + self.config.timeout_seconds
        manifest = load_manifest(manifest_path)
        out_dir = Path(manifest.output.directory or manifest_path.parent)
        work = out_dir / WORK_DIR_NAME
        work.mkdir(parents=True, exist_ok=True)
        fix = options.fix_guest and not options.dry_run
        inputs = [(Path(d.local_path), d.source_format.qemu_format) for d in manifest.disks]
        if fix:
            inputs = [
                (qemu.create_overlay(path, fmt, _fresh(work / f"{disk.id}.overlay.qcow2")), "qcow2")
                for (path, fmt), disk in zip(inputs, manifest.disks)
            ]
        h2k_manifest, report_path = self._write_work_manifest(manifest, inputs, work, options)
        outputs = [output_path(out_dir, d.id, options.target_format.value) for d in manifest.disks]
        cmd = [str(self.binary()), "--manifest", str(h2k_manifest), "-vv" if options.verbose else "-v", *options.custom_args]
        self.log(f"hyper2kvm: running {' '.join(cmd)}" + (" (guest fixes on a qcow2 overlay)" if fix else ""))

        outcome: dict[str, object] = {}
        stop = threading.Event()

        def run_hyper2kvm() -> None:
            try:
                outcome["finished"], outcome["launch_failed"] = self._run(cmd, work, fix, deadline, stop, options.verbose)
            except BaseException as error:  # noqa: BLE001 - re-raised in the calling thread
                outcome["error"] = error

        worker = threading.Thread(target=run_hyper2kvm, name="hyper2kvm", daemon=True)
        worker.start()
        written: list[Path] = []  # only what this call wrote is removed on failure, never a path it was given
        try:
            if fix:
                worker.join()
                self._raise_if_failed(outcome, report_path)
            qemu_options = options.model_copy(update={"custom_args": []})
            if not options.dry_run:
                for (source, fmt), dest in zip(inputs, outputs):
                    self.log(f"qemu-img: {source} ({fmt}) -> {dest}")
                    convert_disk(source, fmt, dest, qemu_options, timeout=max(1.0, deadline - time.monotonic()), log=self.log,
                                 memory_bytes=self.config.qemu_img_memory_bytes)
                    written.append(dest)
            worker.join()
            self._raise_if_failed(outcome, report_path)
        except BaseException:
            stop.set()  # our own failure (or an interrupt) ends hyper2kvm's tree at once
            worker.join()
            for dest in written:
                dest.unlink(missing_ok=True)
            raise
        report = _read_report(report_path)
        return ConversionResult(
            success=True,
            converted_files=[] if options.dry_run else outputs,
            report_path=report_path,
            duration_seconds=time.monotonic() - started,
            warnings=[str(w.get("message", w)) for w in report.get("warnings", [])],
            metadata={
                "converter": self.name,
                "binary": str(self.binary()),
                "dry_run": options.dry_run,
                "planned_files": [str(p) for p in outputs],
                "hyper2kvm_stages": {
                    name: {"success": stage.get("success"), "duration": stage.get("duration")}
                    for name, stage in report.get("pipeline", {}).get("stages", {}).items()
                },
                "format_conversion": "qemu-img convert -W -m 16 with the source format given explicitly",
            },
            guest_modified=fix,
        )

    def _write_work_manifest(
        self, manifest: ArtifactManifest, inputs: list[tuple[Path, str]], work: Path, options: ConvertOptions
    ) -> tuple[Path, Path]:
        """hyper2kvm's own manifest: the inputs it may touch, only the stages we trust it with."""
        report_path = work / "report.json"
        report_path.unlink(missing_ok=True)
        disks = []
        for disk, (path, fmt) in zip(manifest.disks, inputs):
            # Checksums were verified on download; hashing again here would double the read.
            update: dict[str, object] = {"local_path": str(path), "checksum": None}
            if fmt == "qcow2" and disk.source_format is not DiskFormat.qcow2:
                update.update(source_format=DiskFormat.qcow2, bytes=path.stat().st_size)
            disks.append(disk.model_copy(update=update))
        fix = options.fix_guest and not options.dry_run
        work_manifest = manifest.model_copy(
            update={
                "disks": disks,
                "pipeline": ManifestPipeline(
                    inspect=PipelineStage(enabled=fix),
                    fix=fix_stage(
                        enabled=options.fix_guest, backup=False, update_grub=True, regen_initramfs=True,
                        fstab_mode="stabilize-all",
                        # 0.2.1 deadlocks in this step (mount_local vs umount_local): keep it off.
                        remove_vmware_tools=False,
                    ),
                ),
                "output": ManifestOutput(directory=str(work), format=options.target_format.value),
                "options": {"dry_run": options.dry_run, "report": {"enabled": True, "path": str(report_path)}},
            }
        )
        path = write_json_atomic(work / "hyper2kvm-manifest.json", work_manifest.to_json_dict())
        return path, report_path

    def _run(
        self, cmd: list[str], work: Path, fix: bool, deadline: float, stop: threading.Event, verbose: bool
    ) -> tuple[Finished, bool]:
        """Run hyper2kvm once (twice when its KVM appliance fails to launch); returns how it ended
        and whether the appliance failed to launch."""
        base = {**os.environ, **self.config.environment}
        force_tcg = False
        if fix:
            kvm_env = {**base, **guestfs_environment(work, force_tcg=False, base=base)}
            force_tcg = accel.choose(base, kvm_usable(), kvm_env, self.log) == "tcg"
        finished, launch_failed = self._run_once(cmd, base, work, fix, force_tcg, deadline, stop, verbose)
        if fix and finished.code != 0 and launch_failed and not force_tcg:
            self.log("hyper2kvm: the libguestfs appliance did not start with KVM; retrying with TCG")
            accel.remember(kvm_env, "tcg")
            finished, launch_failed = self._run_once(cmd, base, work, fix, True, deadline, stop, verbose)
        return finished, launch_failed

    def _run_once(
        self, cmd: list[str], base: dict[str, str], work: Path, fix: bool, force_tcg: bool,
        deadline: float, stop: threading.Event, verbose: bool,
    ) -> tuple[Finished, bool]:
        env = dict(base)
        if fix:
            env.update(guestfs_environment(work, force_tcg=force_tcg, base=base))
        shown = Hyper2KVMLog(self.log, verbose=verbose)
        launch_failed = False

        def on_line(line: str) -> None:
            nonlocal launch_failed
            launch_failed = launch_failed or LAUNCH_FAILURE in line
            shown(line)

        try:
            finished = run_streaming(
                cmd, env=env, cwd=self.config.working_directory or work,
                timeout=max(1.0, deadline - time.monotonic()), on_line=on_line, stop=stop,
            )
        finally:
            shown.finish()
        return finished, launch_failed

    @staticmethod
    def _raise_if_failed(outcome: dict[str, object], report_path: Path) -> None:
        if "error" in outcome:
            raise outcome["error"]  # type: ignore[misc]
        finished, launch = outcome["finished"], outcome["launch_failed"]
        assert isinstance(finished, Finished)
        report = _read_report(report_path)
        errors = "; ".join(str(e.get("message", e)) for e in report.get("errors", []))
        hint = f" (its report says: {errors})" if errors else ""
        where = f". Its report: {report_path}" if report_path.exists() else ""
        if finished.code != 0:
            # The appliance failing to start even under TCG is the host's trouble (memory, /var/tmp), not the input's.
            if launch:
                hint += "; the libguestfs appliance did not start: run 'libguestfs-test-tool' to see why"
            raise failure("hyper2kvm", finished, hint=hint + where, transient=bool(launch))
        if report.get("pipeline", {}).get("success") is False:
            raise ConverterFailedError(
                f"hyper2kvm exited 0 but its report says the pipeline failed{hint}{where}. "
                f"Its last output:{finished.tail.text()}"
            )


def _fresh(path: Path) -> Path:
    path.unlink(missing_ok=True)
    return path


def _read_report(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
