from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task

from hyperexport import migration
from hyperexport.models import ConversionResult

from .step import engine_step
from .policy import RETRYING


@task(name="convert", **RETRYING)
@engine_step
def convert_disks(plan: migration.ResolvedPlan, manifest_path: Path) -> ConversionResult:
    """Convert the manifest's disks; the converter's output is streamed into this task's log."""
    logger = get_run_logger()
    result = migration.convert(plan, manifest_path, log=logger.info)
    for warning in result.warnings:
        logger.warning(warning)
    logger.info("converted %d disk(s) in %.1fs", len(result.converted_files), result.duration_seconds)
    return result
