"""What a provider is asked to export, and what it reports back."""

from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from .disks import DiskFormat, DiskSource
from .validation import ValidationOptions


class Firmware(str, Enum):
    bios = "bios"
    uefi = "uefi"


class NicInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    mac: str | None = Field(default=None, pattern=r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$")
    network: str | None = None


class VmInfo(BaseModel):
    """Guest hardware as the source describes it; every field is optional."""

    model_config = ConfigDict(extra="forbid")

    vm_id: str | None = None
    vm_name: str | None = None
    datacenter: str | None = None
    cpu: int | None = Field(default=None, ge=1)
    mem_gb: float | None = Field(default=None, gt=0)
    firmware: Firmware | None = None
    secureboot: bool | None = None
    os_hint: str | None = None
    os_version: str | None = None
    nics: list[NicInfo] = Field(default_factory=list)


class Resource(BaseModel):
    """One thing an export created at the source: a snapshot, an image, an export task, stored objects."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = Field(pattern=r"^[a-z0-9-]+$", description="What it is, in the provider's words: snapshot, image, s3-prefix.")
    id: str = Field(min_length=1, description="The provider's id of it (snap-…, an object key prefix).")
    location: str | None = Field(default=None, description="Where it is: region, zone, bucket or datastore.")

    def __str__(self) -> str:
        return f"{self.kind} {self.id}" + (f" in {self.location}" if self.location else "")


class ExportOptions(BaseModel):
    """How to export one VM (the seeds' ExportOptions, for every provider)."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    format: DiskFormat | None = Field(
        default=None, description="Disk format to ask the provider for; None lets the provider choose."
    )
    output_dir: Path = Field(title="Output directory", description="Directory that receives disks, manifest and report.")
    export_timeout_seconds: float = Field(default=4 * 3600, gt=0, description="Give up on the export after this long.")
    download_timeout_seconds: float = Field(default=24 * 3600, gt=0)
    connections: int | None = Field(default=None, ge=1, le=128, description="Parallel connections per disk download.")
    bandwidth_limit_bps: int | None = Field(default=None, gt=0, title="Bandwidth limit (bytes/s)", description="Cap download speed (bytes/second).")
    validation: ValidationOptions = Field(default_factory=ValidationOptions)
    keep_cloud_artifacts: bool = Field(default=False, description="Keep snapshots and export objects the run created.")
    stream: bool = Field(
        default=False,
        title="Stream into the output",
        description="Write each raw disk straight into its qcow2 or raw output while it downloads: no staged copy, "
        "no second pass, proven by reading the output back once. Needs the qemu-img converter, no guest fixes, no "
        "compression and no dry run; disks in other formats are staged and converted as usual.",
    )
    # Not part of the JSON schema, so that forms (the Prefect UI's) can be generated for models holding these options.
    progress_callback: SkipJsonSchema[Callable[[int, int, str, int, int], None] | None] = Field(
        default=None, exclude=True, description="callback(current, total, file_name, file_index, total_files)"
    )

    @field_validator("output_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().absolute()


class ExportResult(BaseModel):
    """A VM ready to download: its metadata and one DiskSource per disk."""

    model_config = ConfigDict(extra="forbid")

    provider: str
    export_method: str = Field(description="How the disks were produced, e.g. 'local-file', 'ova', 'ebs-direct'.")
    export_timestamp: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    vm: VmInfo = Field(default_factory=VmInfo)
    disks: list[DiskSource] = Field(min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict)
    run_id: str | None = Field(default=None, description="The export's run id: what it created carries it as a tag.")
    created_resources: list[Resource] = Field(
        default_factory=list, description="What this export created at the source (for clean-up), oldest first."
    )

    @field_validator("disks")
    @classmethod
    def _unique_ids(cls, disks: list[DiskSource]) -> list[DiskSource]:
        ids = [d.id for d in disks]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"disk ids must be unique, repeated: {', '.join(dupes)}")
        return disks
