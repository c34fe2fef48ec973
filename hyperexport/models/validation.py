"""Our own checks of a converted disk, and their verdicts."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class ValidationOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    check: bool = Field(default=True, description="Run qemu-img check on every output disk.")
    compare: bool = Field(
        default=True, description="Run qemu-img compare of source and output when the guest was not modified."
    )
    verify_checksums: bool = Field(default=True, description="Verify the checksums the source offers on download.")


class CheckVerdict(str, Enum):
    passed = "passed"
    failed = "failed"
    skipped = "skipped"


class DiskValidation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    disk_id: str
    source: Path
    output: Path
    check: CheckVerdict
    check_evidence: str = ""
    virtual_size: CheckVerdict
    source_virtual_size: int
    output_virtual_size: int
    compare: CheckVerdict
    compare_evidence: str = ""
    proof: str = Field(
        default="qemu-img compare",
        description="How the output's content was shown to be the source's: 'qemu-img compare' (both read in "
        "full), 'stream digests' (each range read back from the output against the digest it arrived with) or "
        "'none' (compare skipped).",
    )

    @property
    def passed(self) -> bool:
        return CheckVerdict.failed not in (self.check, self.virtual_size, self.compare)


class ValidationReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    disks: list[DiskValidation]

    @property
    def passed(self) -> bool:
        return all(d.passed for d in self.disks)
