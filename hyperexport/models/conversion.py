"""The seeds' converter contracts: ConvertOptions, ConversionResult, ConverterConfig, ConverterCapabilities."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .disks import DiskFormat


class TargetFormat(str, Enum):
    qcow2 = "qcow2"
    raw = "raw"
    vmdk = "vmdk"


class ConverterName(str, Enum):
    hyper2kvm = "hyper2kvm"
    qemu_img = "qemu-img"


class ConvertOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stream_output: bool = Field(default=True, description="Stream the converter's output line by line to the log.")
    verbose: bool = Field(default=False, description="Ask the converter for verbose output.")
    dry_run: bool = Field(default=False, description="Plan the conversion, write nothing.")
    target_format: TargetFormat = Field(default=TargetFormat.qcow2, description="Output disk format.")
    compression_level: int = Field(
        default=0, ge=0, le=9, description="0 writes uncompressed; 1-9 compress qcow2 clusters (zlib)."
    )
    preserve_mac: bool = Field(default=True, title="Preserve MAC addresses", description="Keep the source NICs' MAC addresses.")
    fix_guest: bool = Field(
        default=False,
        description="Run hyper2kvm's guest fixes (fstab to UUID, virtio drivers, initramfs); needs libguestfs.",
    )
    custom_args: list[str] = Field(default_factory=list, description="Extra arguments passed to the converter.")


class ConversionResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    success: bool
    converted_files: list[Path] = Field(default_factory=list)
    report_path: Path | None = None
    duration_seconds: float = 0.0
    error: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    guest_modified: bool = Field(default=False, description="True when guest fixes changed the disk contents.")


class ConverterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    binary_path: Path | None = Field(default=None, description="Converter binary; None auto-detects it.")
    timeout_seconds: float = Field(default=6 * 3600, gt=0, description="Kill the converter after this long.")
    qemu_img_memory_bytes: int | None = Field(
        default=2 * 2**30,
        ge=16 * 2**20,
        description="Address space each qemu-img convert may take (it uses tens of MiB; an image that makes it "
        "allocate without end is stopped); None: no limit. Guest fixes are not capped: libguestfs's appliance "
        "reserves far more than it uses.",
    )
    environment: dict[str, str] = Field(default_factory=dict, description="Extra environment for the converter.")
    working_directory: Path | None = None


class ConverterCapabilities(BaseModel):
    model_config = ConfigDict(extra="forbid")

    supported_source_formats: list[DiskFormat]
    supported_target_formats: list[TargetFormat]
    supports_driver_injection: bool
    supports_os_detection: bool
    supports_validation: bool
    supported_providers: list[str]
