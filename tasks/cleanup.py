from __future__ import annotations

from prefect import get_run_logger, task

from blocks import credentials_for
from hyperexport import migration
from hyperexport.models import ExportResult, Resource

from .step import engine_step
from .policy import QUICK


@task(name="cleanup", **QUICK)
@engine_step
def cleanup_export(request: migration.MigrationRequest, export: ExportResult) -> list[Resource]:
    """Remove the snapshots, images and export objects this run created (unless asked to keep them)."""
    removed = migration.cleanup(request, export, credentials_for(request.provider.value, request.credentials_block))
    if removed:
        get_run_logger().info("removed %d resource(s) the export created: %s", len(removed), ", ".join(map(str, removed)))
    return removed
