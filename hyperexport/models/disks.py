"""Disks as providers describe them and as the pipeline stages them."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class DiskFormat(str, Enum):
    """Source formats of the Artifact Manifest v1.0 (``vhd`` is qemu-img's ``vpc``)."""

    vmdk = "vmdk"
    qcow2 = "qcow2"
    raw = "raw"
    vhd = "vhd"
    vhdx = "vhdx"
    vdi = "vdi"

    @property
    def qemu_format(self) -> str:
        return "vpc" if self is DiskFormat.vhd else self.value


class DiskType(str, Enum):
    boot = "boot"
    data = "data"
    unknown = "unknown"


class DiskSource(BaseModel):
    """Where one disk's bytes are, before they are staged locally.

    ``location`` is a local path or an http(s) URL; providers that read through
    an SDK use their own scheme (``ebs://snap-…``) and open it themselves.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_-]+$", description="Stable disk id, unique within the VM.")
    location: str = Field(description="Local path, http(s) URL, or provider-specific URI of the disk.")
    format: DiskFormat | None = Field(default=None, description="Format of the bytes at location; None: detect after staging.")
    size_bytes: int | None = Field(default=None, ge=0, description="Size of the file at location, when known.")
    virtual_size_bytes: int | None = Field(default=None, ge=0, description="Guest-visible size, when known.")
    disk_type: DiskType = DiskType.unknown
    boot_order_hint: int = Field(default=0, ge=0)
    label: str | None = None
    file_name: str = Field(description="File name the staged disk gets in the output directory.")


class StreamedDisk(BaseModel):
    """How a disk streamed straight into its output was proven: each range read back once from the output
    and compared with the digest its bytes arrived with (no staged copy, no second read of the source)."""

    model_config = ConfigDict(extra="forbid")

    layout: str = Field(description="qcow2 (written through NBD) or raw (the output file itself).")
    ranges_checked: int = Field(ge=0)
    bytes_checked: int = Field(ge=0, description="Data bytes read back and matched.")
    bytes_zero: int = Field(
        default=0, ge=0,
        description="Fetched bytes that were all zeros: matched their digests as zeros, left as holes of the "
        "fresh output, not read back.",
    )
    bytes_unchecked: int = Field(ge=0, description="Bytes kept from an earlier run without a recorded digest.")
    bytes_sparse: int = Field(ge=0, description="Bytes the source declared empty: holes, never fetched.")
    source_checksums: list[str] = Field(
        default_factory=list, description="Whole-object and per-range checksums of the source that matched."
    )


class StagedDisk(BaseModel):
    """A disk whose bytes are on the local filesystem, ready to convert."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    path: Path
    format: DiskFormat
    size_bytes: int = Field(ge=0, description="Bytes the file occupies (its length).")
    virtual_size_bytes: int = Field(ge=0, description="Guest-visible size, from qemu-img info.")
    sha256: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")
    disk_type: DiskType = DiskType.unknown
    boot_order_hint: int = 0
    label: str | None = None
    download_seconds: float = 0.0
    bytes_fetched: int = 0
    streamed: StreamedDisk | None = Field(
        default=None, description="Set when the disk was written straight into its output while it downloaded."
    )
