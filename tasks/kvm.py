"""The KVM-ready steps: the libvirt domain beside the disks, and the boot check."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task

from hyperexport import migration
from hyperexport.kvm import BootCheckResult, DomainResult
from hyperexport.models import StagedDisk

from .policy import QUICK, RETRYING
from .step import engine_step


@task(name="domain", **QUICK)
@engine_step
def write_domain(plan: migration.ResolvedPlan, manifest_path: Path, disks: list[StagedDisk]) -> DomainResult | None:
    """Write and validate the libvirt domain XML of the converted VM (and define it, when asked)."""
    domain = migration.write_domain(plan, manifest_path, disks)
    if domain is not None:
        logger = get_run_logger()
        logger.info("libvirt domain %s: %s (%s)", domain.name, domain.xml_path, domain.validation)
        for warning in domain.warnings:
            logger.warning(warning)
    return domain


@task(name="boot-check", **RETRYING)
@engine_step
def check_boot(plan: migration.ResolvedPlan, manifest_path: Path, disks: list[StagedDisk]) -> BootCheckResult | None:
    """Boot the converted VM under QEMU (its disks never written); fails with the console's last lines."""
    result = migration.check_boot(plan, manifest_path, disks)
    if result is not None:
        get_run_logger().info("boot check: %s", result.message)
    return result
