from __future__ import annotations

from prefect import get_run_logger, task

from hyperexport import migration
from hyperexport.models import ExportResult, StagedDisk

from .credentials import plan_credentials
from .step import engine_step
from .policy import RETRYING
from .progress import ArtifactProgress, artifact_key


@task(name="download", **RETRYING)
@engine_step
def download_disk(plan: migration.ResolvedPlan, export: ExportResult, index: int) -> StagedDisk:
    """Bring one disk to the local filesystem (resumable), verify it, and report progress as an artifact."""
    logger = get_run_logger()
    disk = export.disks[index]
    progress = ArtifactProgress(
        key=artifact_key("download", export.vm.vm_name or "vm", disk.id),
        description=f"Download of {disk.file_name} ({disk.id}) for {export.vm.vm_name or export.vm.vm_id}",
        logger=logger,
    )
    credentials = plan_credentials(plan)
    staged = migration.stage(plan, export, index, credentials=credentials, on_snapshot=progress)
    progress.done()
    logger.info(
        "staged %s: %s (%s, %d bytes, virtual %d bytes, %d fetched)",
        disk.id, staged.path, staged.format.value, staged.size_bytes, staged.virtual_size_bytes, staged.bytes_fetched,
    )
    return staged
