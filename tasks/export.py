from __future__ import annotations

from prefect import get_run_logger, task
from prefect.runtime import flow_run

from hyperexport import migration
from hyperexport.models import ExportResult

from .credentials import plan_credentials
from .step import engine_step
from .policy import RETRYING


@task(name="export", **RETRYING)
@engine_step
def export_vm(plan: migration.ResolvedPlan) -> ExportResult:
    """Snapshot/export the VM (for ``local``: find and stage the source) and list its disks."""
    logger = get_run_logger()
    # The run id that tags what the export creates is the flow run's: `--cleanup-run` takes the id the UI shows.
    result = migration.export_vm(plan, plan_credentials(plan), run_id=flow_run.get_id())
    logger.info(
        "exported %s via %s: %d disk(s): %s",
        result.vm.vm_name or result.vm.vm_id, result.export_method, len(result.disks),
        ", ".join(d.file_name for d in result.disks),
    )
    return result
