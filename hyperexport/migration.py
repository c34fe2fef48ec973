"""One VM migration as engine steps, each taking and returning pydantic models (never clients), so that the
Prefect layer can hash inputs for its cache and persist results for retries. The order of the steps and the
keep-or-clean policy are in ``pipeline.py``; ``run_migration`` runs them here, the migrate-vm flow as tasks.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny

from .converters import make_converter
from .kvm import output as kvm_output
from .kvm.models import ATTACHABLE_FORMATS, BootCheckResult, DomainResult, KvmOutput
from .converters.base import LogLine, discard, output_path
from .errors import InvalidInputError, ProviderDetectionError, UnsafeImageError, ValidationError
from .manifest import ManifestPipeline, PipelineStage, build_manifest, detect_provider, load_manifest, write_manifest
from .overlap import check_no_overlap, same_file
from .paths import contained
from .models import (
    ConversionResult,
    ConverterConfig,
    ConverterName,
    ConvertOptions,
    ExportOptions,
    ExportResult,
    ProviderName,
    Resource,
    StagedDisk,
    ValidationReport,
)
from .progress import ProgressCallback, ProgressSnapshot
from .report import MigrationReport, StepTiming, write_report
from . import pipeline
from .providers import lifecycle
from .providers.contract import Provider
from .providers.registry import get_provider
from .staging import STAGING_DIR_NAME, stage_disk, verify_disk
from .streaming import stream_blockers
from .transfer.nbd_export import daemon_binary
from .validation import validate_conversion

OUTPUT_FIELD = "export.output_dir"


class MigrationRequest(BaseModel):
    """Everything one VM migration needs; the parameters of the migrate-vm flow."""

    model_config = ConfigDict(extra="forbid")

    provider: ProviderName = Field(description="Where the VM is: one of the providers of this installation (local, aws, ...).")
    source: dict[str, Any] = Field(description="Provider options that identify the VM, e.g. {'source': '/vms/web.ova'}.")
    export: ExportOptions = Field(description="Output directory, timeouts, connections and validation settings.")
    convert: bool = Field(default=True, description="Convert the disks for KVM after the export.")
    converter: ConverterName = Field(default=ConverterName.hyper2kvm)
    convert_options: ConvertOptions = Field(default_factory=ConvertOptions)
    converter_config: ConverterConfig = Field(default_factory=ConverterConfig)
    credentials_block: str | None = Field(default=None, description="Name of the Prefect block holding credentials.")
    kvm: KvmOutput = Field(default_factory=KvmOutput, description="The libvirt domain beside the disks, and the boot check.")

    @property
    def output_dir(self) -> Path:
        return self.export.output_dir


class ResolvedPlan(BaseModel):
    """What preflight resolved for one migration, frozen: every step takes it, so the provider's options are
    parsed once and nothing is checked twice. Conversion settings reach the converter by this route only
    (``request.convert_options`` and ``request.converter_config``); the manifest records them for its readers."""

    model_config = ConfigDict(frozen=True)

    request: MigrationRequest
    options: SerializeAsAny[BaseModel] | None = Field(
        default=None, description="The provider's parsed options; None when converting an existing manifest."
    )

    @property
    def provider(self) -> Provider[Any, Any]:
        return get_provider(self.request.provider.value)

    @property
    def output_dir(self) -> Path:
        return self.request.output_dir

    @property
    def convert_options(self) -> ConvertOptions:
        return self.request.convert_options

    def source_options(self) -> Any:
        if self.options is None:
            raise InvalidInputError("this plan converts an existing manifest; it has no source to export")
        return self.options


def preflight(request: MigrationRequest) -> ResolvedPlan:
    """Refuse bad parameters before any work starts; returns the plan that the steps take."""
    provider = get_provider(request.provider.value)
    options = provider.parse(request.source)
    provider.check(options, request.export)
    check_no_overlap(request.output_dir, provider.source_paths(options))
    return _checked(ResolvedPlan(request=request.model_copy(deep=True), options=options))


def conversion_plan(request: MigrationRequest) -> ResolvedPlan:
    """The plan of converting an existing Artifact Manifest: no source options, the same conversion checks."""
    return _checked(ResolvedPlan(request=request.model_copy(deep=True)))


def _checked(plan: ResolvedPlan) -> ResolvedPlan:
    request = plan.request
    prepare_output_dir(request.output_dir)
    if request.convert:
        make_converter(request.converter, request.converter_config).validate()
    if request.kvm.boot_check and not _attachable(plan):
        raise InvalidInputError(
            f"the boot check boots qcow2 or raw disks, not {request.convert_options.target_format.value}; "
            "convert to qcow2 for the check, or leave it off", field="kvm.boot_check",
        )
    if request.export.stream:
        blockers = stream_blockers(request.convert, request.converter, request.convert_options)
        if blockers:
            raise InvalidInputError(
                f"export.stream writes each raw disk straight into its output, which this run cannot do: "
                f"{'; '.join(blockers)}", field="export.stream",
            )  # fmt: skip
        daemon_binary()  # qemu-storage-daemon writes a qcow2 output as it downloads
    return plan


def stream_target(plan: ResolvedPlan, disk_id: str) -> Path | None:
    """Where the disk streams to, or None when the run stages and converts (preflight refused a plan that
    asks to stream and cannot)."""
    if not plan.request.export.stream:
        return None
    return output_path(plan.output_dir, disk_id, plan.convert_options.target_format.value)


def prepare_output_dir(out: Path) -> None:
    """Create the output directory, or say why it cannot be used (a file, read-only, no permission)."""
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"output {out} exists and is not a directory; choose a directory", field=OUTPUT_FIELD)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InvalidInputError(
            f"output directory {out} cannot be created ({error.strerror or error}); choose a writable place", field=OUTPUT_FIELD
        ) from None
    if not os.access(out, os.W_OK):
        raise InvalidInputError(f"output directory {out} is not writable; fix its permissions or choose another", field=OUTPUT_FIELD)


def export_vm(plan: ResolvedPlan, credentials: Any | None = None, *, run_id: str | None = None) -> ExportResult:
    """The provider's export in a session of its own (``run_id``: the flow run's id; default a fresh one)."""
    return lifecycle.export(plan.provider, plan.source_options(), plan.request.export, credentials, run_id=run_id)


def stage(
    plan: ResolvedPlan,
    export: ExportResult,
    index: int,
    *,
    credentials: Any | None = None,
    progress: ProgressCallback | None = None,
    on_snapshot: Callable[[ProgressSnapshot], None] | None = None,
) -> StagedDisk:
    provider, options = plan.provider, plan.source_options()
    return stage_disk(
        export.disks[index],
        plan.request.export,
        open_source=lambda d: provider.open_disk(d, options, credentials),
        defaults=provider.transfer,
        progress=progress,
        on_snapshot=on_snapshot,
        file_index=index + 1,
        total_files=len(export.disks),
        stream_to=stream_target(plan, export.disks[index].id),
    )


def generate_manifest(plan: ResolvedPlan, export: ExportResult, disks: list[StagedDisk]) -> Path:
    """The Artifact Manifest of the staged disks; its pipeline and options record the plan's conversion settings
    (the converter takes them from the plan, never back from the manifest)."""
    request = plan.request
    manifest = build_manifest(
        export,
        disks,
        output_dir=request.output_dir,
        output_format=request.convert_options.target_format.value,
        pipeline=ManifestPipeline(
            inspect=PipelineStage(enabled=request.convert_options.fix_guest),
            fix=PipelineStage(enabled=request.convert_options.fix_guest),
            convert=PipelineStage(enabled=request.convert),
        ),
        options={"dry_run": request.convert_options.dry_run, "verbose": 2 if request.convert_options.verbose else 1},
    )
    return write_manifest(manifest, request.output_dir / STAGING_DIR_NAME)


def detect(manifest_path: Path, expected: ProviderName) -> str:
    found = detect_provider(manifest_path)
    if found != expected.value:
        raise ProviderDetectionError(f"manifest {manifest_path} was written for provider {found!r}, not {expected.value!r}")
    return found


def convert(plan: ResolvedPlan, manifest_path: Path, log: LogLine = discard) -> ConversionResult:
    """Convert the manifest's disks as the plan's conversion settings say."""
    request = plan.request
    converter = make_converter(request.converter, request.converter_config, log=log)
    return converter.convert(manifest_path, request.convert_options)


def validate(plan: ResolvedPlan, disks: list[StagedDisk], conversion: ConversionResult) -> ValidationReport:
    outputs = _outputs(plan, disks)
    for disk, output in zip(disks, outputs):
        if disk.streamed is None and same_file(disk.path, output):
            raise ValidationError(
                f"{disk.id}: the output {output} is the source itself; comparing it with itself would prove nothing. "
                "Choose an output directory apart from the sources."
            )
    report = validate_conversion(
        disks,
        outputs,
        plan.convert_options.target_format.value,
        guest_modified=conversion.guest_modified,
        options=plan.request.export.validation,
    )
    if not report.passed:
        failed = [d for d in report.disks if not d.passed]
        details = "; ".join(
            f"{d.disk_id}: check={d.check.value} ({d.check_evidence}), size={d.virtual_size.value} "
            f"({d.source_virtual_size} vs {d.output_virtual_size}), compare={d.compare.value} ({d.compare_evidence})"
            for d in failed
        )
        raise ValidationError(f"converted disks failed validation: {details}. The outputs are not safe to boot; re-run the conversion.")
    return report


def _outputs(plan: ResolvedPlan, disks: list[StagedDisk]) -> list[Path]:
    return [output_path(plan.output_dir, d.id, plan.convert_options.target_format.value) for d in disks]


def _attachable(plan: ResolvedPlan) -> bool:
    return plan.convert_options.target_format.value in ATTACHABLE_FORMATS


def _converted(plan: ResolvedPlan) -> bool:
    return plan.request.convert and not plan.convert_options.dry_run


def write_domain(plan: ResolvedPlan, manifest_path: Path, disks: list[StagedDisk]) -> DomainResult | None:
    """The libvirt domain of the converted VM beside its disks (unless turned off, or nothing was converted)."""
    if not plan.request.kvm.domain or not _converted(plan) or not _attachable(plan):
        return None  # a vmdk output is for another hypervisor, not for a KVM domain
    return kvm_output.write_domain(manifest_path, _outputs(plan, disks), plan.request.kvm, plan.output_dir)


def check_boot(plan: ResolvedPlan, manifest_path: Path, disks: list[StagedDisk]) -> BootCheckResult | None:
    """Boot the converted VM under QEMU when asked (its disks are never written); ValidationError when it does not."""
    if not plan.request.kvm.boot_check or not _converted(plan):
        return None
    return kvm_output.check_boot(manifest_path, _outputs(plan, disks), plan.request.kvm, plan.output_dir)


def cleanup(plan: ResolvedPlan, export: ExportResult, credentials: Any | None = None) -> list[Resource]:
    """Remove what the export created at the source (snapshots, temporary images, export objects)."""
    if plan.request.export.keep_cloud_artifacts or not export.created_resources:
        return []
    return lifecycle.cleanup(plan.provider, export, plan.source_options(), credentials)


def cleanup_run(provider: str, source: dict[str, Any], run_id: str, credentials: Any | None = None) -> list[Resource]:
    """Remove what an abandoned run left at the source, found by its run id alone."""
    chosen = get_provider(provider)
    return lifecycle.cleanup_run(chosen, run_id, chosen.parse(source), credentials)


def build_report(
    plan: ResolvedPlan,
    export: ExportResult,
    disks: list[StagedDisk],
    manifest_path: Path,
    conversion: ConversionResult | None,
    validation: ValidationReport | None,
    *,
    started: datetime,
    timings: list[StepTiming],
    source_description: str | None = None,
    domain: DomainResult | None = None,
    boot: BootCheckResult | None = None,
) -> MigrationReport:
    provider = plan.provider
    return MigrationReport(
        provider=provider.name,
        source=source_description or provider.describe(plan.source_options()),
        vm_name=export.vm.vm_name,
        export_method=export.export_method,
        started_at=started,
        finished_at=datetime.now(timezone.utc),
        disks=disks,
        manifest_path=manifest_path,
        conversion=conversion,
        validation=validation,
        domain=domain,
        boot_check=boot,
        timings=timings,
    )


def run_migration(request: MigrationRequest, *, log: LogLine = discard, credentials: Any | None = None) -> MigrationReport:
    """The whole migration in this process, without Prefect (library use and engine tests): the stages of
    ``pipeline`` in order, with the same keep-or-clean policy as the migrate-vm flow."""
    started = datetime.now(timezone.utc)
    timings: list[StepTiming] = []

    def timed(step: str, fn: Callable[[], Any]) -> Any:
        t0 = time.monotonic()
        value = fn()
        timings.append(StepTiming(step=step, seconds=time.monotonic() - t0))
        return value

    plan = preflight(request)
    export = timed("export", lambda: export_vm(plan, credentials))
    try:
        disks = timed("download", lambda: [stage(plan, export, i, credentials=credentials) for i in range(len(export.disks))])
    except Exception as error:
        if pipeline.clean_after_failed_download(export, error):
            cleanup(plan, export, credentials)
        else:
            log(pipeline.kept_for_retry(plan.provider, export))
        raise
    timed("cleanup", lambda: cleanup(plan, export, credentials))
    manifest_path = timed("manifest", lambda: generate_manifest(plan, export, disks))
    timed("detect", lambda: detect(manifest_path, request.provider))
    conversion = validation = domain = boot = None
    if request.convert:
        conversion = timed("convert", lambda: convert(plan, manifest_path, log))
        if not request.convert_options.dry_run:
            validation = timed("validate", lambda: validate(plan, disks, conversion))
            domain = timed("domain", lambda: write_domain(plan, manifest_path, disks))
            boot = timed("boot-check", lambda: check_boot(plan, manifest_path, disks))
    report = build_report(plan, export, disks, manifest_path, conversion, validation, started=started, timings=timings,
                          domain=domain, boot=boot)
    write_report(request.output_dir, report)
    return report


def adopt_manifest(manifest_path: Path, plan: ResolvedPlan) -> tuple[Path, list[StagedDisk]]:
    """Take an existing Artifact Manifest for conversion: refuse an unknown provider, check every disk,
    and write a working copy (disks verified, the plan's output directory) into the plan's output directory."""
    detect_provider(manifest_path)
    manifest = load_manifest(manifest_path)
    paths = [_manifest_disk(manifest_path, disk.local_path) for disk in manifest.disks]
    check_no_overlap(plan.output_dir, [manifest_path, *paths], ids=[d.id for d in manifest.disks])
    disks = []
    for disk, path in zip(manifest.disks, paths):
        fmt, info = verify_disk(path, disk.source_format)
        disks.append(
            StagedDisk(
                id=disk.id, path=path, format=fmt, size_bytes=path.stat().st_size,
                virtual_size_bytes=info.virtual_size, sha256=disk.checksum,
                disk_type=disk.disk_type, boot_order_hint=disk.boot_order_hint, label=disk.label,
            )
        )
    working = manifest.model_copy(
        update={
            "disks": [d.model_copy(update={"local_path": str(s.path), "source_format": s.format}) for d, s in zip(manifest.disks, disks)],
            "output": manifest.output.model_copy(update={"directory": str(plan.output_dir), "format": plan.convert_options.target_format.value}),
        }
    )
    return write_manifest(working, plan.output_dir / STAGING_DIR_NAME), disks


def _manifest_disk(manifest_path: Path, local_path: str) -> Path:
    """A manifest's disk, which must be a file inside the manifest's own directory (symlinks resolved)."""
    base = manifest_path.absolute().parent
    path = Path(local_path)
    if path.is_absolute():
        resolved = path.resolve()
        if not resolved.is_relative_to(base.resolve()):
            raise UnsafeImageError(
                f"manifest {manifest_path.name} names disk {local_path!r}, outside the manifest's directory {base}; "
                "a manifest may name only disks beside it (or below it). Move the disks next to the manifest.",
            )
        local_path = str(resolved.relative_to(base.resolve()))
        base = base.resolve()
    return contained(base, local_path, f"manifest {manifest_path.name}: disk")
