from __future__ import annotations

from prefect import get_run_logger, task

from hyperexport import migration
from hyperexport.models import ExportResult, Resource

from .credentials import plan_credentials
from .step import engine_step
from .policy import QUICK


@task(name="cleanup", **QUICK)
@engine_step
def cleanup_export(plan: migration.ResolvedPlan, export: ExportResult) -> list[Resource]:
    """Remove the snapshots, images and export objects this run created (unless asked to keep them)."""
    removed = migration.cleanup(plan, export, plan_credentials(plan))
    if removed:
        get_run_logger().info("removed %d resource(s) the export created: %s", len(removed), ", ".join(map(str, removed)))
    return removed
