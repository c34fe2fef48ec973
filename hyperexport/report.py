"""The migration report: JSON beside the outputs, and a markdown summary of it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from .fsutil import write_json_atomic
from .kvm.models import BootCheckResult, DomainResult
from .models import ConversionResult, StagedDisk, ValidationReport

REPORT_FILE_NAME = "migration-report.json"


class StepTiming(BaseModel):
    step: str
    seconds: float


class MigrationReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str
    source: str
    vm_name: str | None
    export_method: str
    started_at: datetime
    finished_at: datetime
    disks: list[StagedDisk]
    manifest_path: Path
    conversion: ConversionResult | None
    validation: ValidationReport | None
    domain: DomainResult | None = None
    boot_check: BootCheckResult | None = None
    timings: list[StepTiming] = Field(default_factory=list)
    report_path: Path | None = None

    @property
    def success(self) -> bool:
        conversion_ok = self.conversion is None or self.conversion.success
        validation_ok = self.validation is None or self.validation.passed
        boot_ok = self.boot_check is None or self.boot_check.passed
        return conversion_ok and validation_ok and boot_ok


def write_report(output_dir: Path, report: MigrationReport) -> Path:
    path = output_dir / REPORT_FILE_NAME
    report.report_path = path
    return write_json_atomic(path, report.model_dump(mode="json"))


def _size(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def render_markdown(report: MigrationReport) -> str:
    outputs = report.conversion.converted_files if report.conversion else []
    verdicts = {v.disk_id: v for v in report.validation.disks} if report.validation else {}
    lines = [
        f"# Migration of {report.vm_name or 'VM'} ({report.provider})",
        "",
        f"- **Source:** {report.source} (export method: {report.export_method})",
        f"- **Result:** {'succeeded' if report.success else 'FAILED'}",
        f"- **Manifest:** `{report.manifest_path}`",
        f"- **Report:** `{report.report_path}`" if report.report_path else "",
        f"- **Converter:** {report.conversion.metadata.get('converter', '?')}" if report.conversion else "- **Converter:** not run",
        "",
        "| disk | source | format | size | virtual size | output | check | size match | compare | proof |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, disk in enumerate(report.disks):
        v = verdicts.get(disk.id)
        out = f"`{outputs[i]}`" if i < len(outputs) else "-"
        lines.append(
            f"| {disk.id} | `{disk.path.name}` | {disk.format.value} | {_size(disk.size_bytes)} | {_size(disk.virtual_size_bytes)} "
            f"| {out} | {v.check.value if v else '-'} | {v.virtual_size.value if v else '-'} | {v.compare.value if v else '-'} "
            f"| {v.proof if v else '-'} |"
        )
    if report.domain:
        lines += ["", f"- **libvirt domain:** `{report.domain.xml_path}` ({report.domain.validation})"]
        lines += [f"- warning: {warning}" for warning in report.domain.warnings]
        lines += ["- **start it:** " + "; ".join(f"`{c}`" for c in report.domain.start_commands())]
    if report.boot_check:
        check = report.boot_check
        verdict = (f"booted under {check.accel.upper()}, marker after {check.seconds_to_marker:.1f} s"
                   if check.passed and check.seconds_to_marker is not None else f"FAILED under {check.accel.upper()}")
        lines += [f"- **Boot check:** {verdict}" + (f" (KVM abandoned: {check.kvm_fallback})" if check.kvm_fallback else "")]
    lines += ["", "| step | seconds |", "|---|---|"]
    lines += [f"| {t.step} | {t.seconds:.1f} |" for t in report.timings]
    return "\n".join(line for line in lines if line is not None) + "\n"
