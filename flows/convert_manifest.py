"""The convert-manifest flow: convert and validate the disks of an existing Artifact Manifest."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

from prefect import flow, tags, task
from prefect.states import Cancelled

from hyperexport import cancel, migration
from hyperexport.errors import HyperExportError
from hyperexport.models import ExportResult, StagedDisk, VmInfo
from hyperexport.report import MigrationReport, StepTiming
from tasks import check_boot, convert_disks, detect_provider, publish_report, validate_disks, write_domain
from tasks.step import INTERRUPTED, engine_step, named
from tasks.policy import QUICK


@task(name="adopt-manifest", **QUICK)
@engine_step
def adopt_manifest(manifest_path: Path, plan: migration.ResolvedPlan) -> tuple[Path, list[StagedDisk]]:
    return migration.adopt_manifest(manifest_path, plan)


@flow(name="convert-manifest", log_prints=True, persist_result=True)
def convert_manifest(manifest_path: Path, request: migration.MigrationRequest) -> MigrationReport:
    """Like migrate-vm from the manifest on: detect provider, convert, validate, domain, boot check, report."""
    try:
        return _convert(manifest_path, request)
    except Exception:
        if cancel.cancelled():
            return Cancelled(message=INTERRUPTED)
        raise


def _convert(manifest_path: Path, request: migration.MigrationRequest) -> MigrationReport:
    started = datetime.now(timezone.utc)
    clock = time.monotonic()
    try:
        plan = migration.conversion_plan(request)
    except HyperExportError as error:
        raise named(error)  # noqa: B904 - the same exception, its message completed
    working, disks = adopt_manifest(manifest_path, plan)
    with tags(request.provider.value):
        detect_provider(working, request.provider)
        conversion = convert_disks(plan, working)
        validation = None if request.convert_options.dry_run else validate_disks(plan, disks, conversion)
        domain = write_domain(plan, working, disks)
        boot = check_boot(plan, working, disks)
    manifest = migration.load_manifest(working)
    export = ExportResult(
        provider=manifest.source.provider,
        export_method=manifest.source.export_method or "manifest",
        vm=VmInfo(vm_id=manifest.source.vm_id, vm_name=manifest.source.vm_name),
        disks=[{"id": d.id, "location": str(d.path), "format": d.format, "file_name": d.path.name} for d in disks],
    )
    report = migration.build_report(
        plan, export, disks, working, conversion, validation, started=started,
        timings=[StepTiming(step="convert-manifest", seconds=time.monotonic() - clock)],
        source_description=f"artifact manifest {manifest_path}", domain=domain, boot=boot,
    )
    return publish_report(report, request.output_dir)
