"""The migrate-vm flow: orders the tasks, nothing more."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from prefect import flow, get_run_logger, tags

from hyperexport import migration
from hyperexport.report import MigrationReport, StepTiming
from tasks import (
    cleanup_export,
    convert_disks,
    detect_provider,
    download_disk,
    export_vm,
    generate_manifest,
    publish_report,
    validate_disks,
)


def _run_name() -> str:
    from prefect.runtime import flow_run

    request = flow_run.parameters.get("request") or {}
    provider = request.get("provider", "vm") if isinstance(request, dict) else getattr(request, "provider", "vm")
    provider = getattr(provider, "value", provider)
    return f"migrate-{provider}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"


@flow(name="migrate-vm", flow_run_name=_run_name, log_prints=True, validate_parameters=True)
def migrate_vm(request: migration.MigrationRequest) -> MigrationReport:
    """Migrate one VM to KVM: export, download, manifest, detect provider, convert, validate, report."""
    logger = get_run_logger()
    started = datetime.now(timezone.utc)
    migration.preflight(request)
    provider = request.provider.value
    timings: list[StepTiming] = []
    clock = time.monotonic()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.monotonic()
        timings.append(StepTiming(step=step, seconds=now - clock))
        clock = now

    with tags(provider):
        export = export_vm(request)
        lap("export")
        try:
            disks, manifest_path, conversion, validation = _after_export(request, export, lap)
        finally:
            cleanup_export(request, export)
    report = migration.build_report(
        request, export, disks, manifest_path, conversion, validation, started=started, timings=timings
    )
    report = publish_report(report, request.output_dir)
    logger.info("migration of %s finished: %s", export.vm.vm_name, "success" if report.success else "failed")
    return report


def _after_export(request: migration.MigrationRequest, export, lap):
    """Download, manifest, detect, convert, validate: everything the clean-up must follow."""
    futures = [download_disk.submit(request, export, i) for i in range(len(export.disks))]
    disks = [f.result() for f in futures]
    lap("download")
    manifest_path = generate_manifest(request, export, disks)
    lap("manifest")
    detect_provider(manifest_path, request.provider)
    lap("detect")
    conversion = validation = None
    if request.convert:
        conversion = convert_disks(request, manifest_path)
        lap("convert")
        if not request.convert_options.dry_run:
            validation = validate_disks(request, disks, conversion)
            lap("validate")
    return disks, manifest_path, conversion, validation
