from __future__ import annotations

from prefect import get_run_logger, task

from hyperexport import migration
from hyperexport.models import ConversionResult, StagedDisk, ValidationReport

from .step import engine_step
from .policy import QUICK


@task(name="validate", **QUICK)
@engine_step
def validate_disks(
    plan: migration.ResolvedPlan, disks: list[StagedDisk], conversion: ConversionResult
) -> ValidationReport:
    """qemu-img check, virtual size and qemu-img compare of every output: our verdict, not the converter's."""
    report = migration.validate(plan, disks, conversion)
    logger = get_run_logger()
    for disk in report.disks:
        logger.info("%s: check %s, size %s, compare %s", disk.disk_id, disk.check.value, disk.virtual_size.value, disk.compare.value)
    return report
