from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task

from hyperexport import migration
from hyperexport.models import ExportResult, ProviderName, StagedDisk

from .step import engine_step
from .policy import QUICK


@task(name="generate-manifest", **QUICK)
@engine_step
def generate_manifest(plan: migration.ResolvedPlan, export: ExportResult, disks: list[StagedDisk]) -> Path:
    path = migration.generate_manifest(plan, export, disks)
    get_run_logger().info("wrote Artifact Manifest v1.0 %s", path)
    return path


@task(name="detect-provider", **QUICK)
@engine_step
def detect_provider(manifest_path: Path, expected: ProviderName) -> str:
    provider = migration.detect(manifest_path, expected)
    get_run_logger().info("manifest %s is from provider %s", manifest_path.name, provider)
    return provider
