from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from hyperexport.report import MigrationReport, render_markdown, write_report

from .progress import artifact_key


@task(name="report", persist_result=True)
def publish_report(report: MigrationReport, output_dir: Path) -> MigrationReport:
    """Write migration-report.json beside the outputs and sum the migration up as a markdown artifact."""
    path = write_report(output_dir, report)
    create_markdown_artifact(
        key=artifact_key("migration", report.vm_name or "vm"),
        markdown=render_markdown(report),
        description=f"Migration summary of {report.vm_name or 'VM'} from {report.provider}",
    )
    get_run_logger().info("migration report: %s", path)
    return report
