"""Artifact Manifest v1.0: the contract between export and conversion.

The schema is the one hyper2kvm 0.2.x's ``ManifestLoader`` accepts; the
models below refuse what it would refuse, so a bad manifest fails here, with a
message that names the field, and never half-way through a conversion.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, get_args

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .errors import ManifestError, ProviderDetectionError
from .fsutil import write_json_atomic
from .models import DiskFormat, DiskType, ExportResult, StagedDisk
from .models.provider_name import PROVIDER_NAMES
from .validate_input import describe_validation_error

MANIFEST_FILE_NAME = "artifact-manifest.json"


class ManifestDisk(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    source_format: DiskFormat
    bytes: int = Field(ge=0)
    local_path: str
    checksum: str | None = Field(default=None, pattern=r"^sha256:[a-f0-9]{64}$")
    boot_order_hint: int = Field(default=0, ge=0)
    disk_type: DiskType = DiskType.unknown
    label: str | None = None


class ManifestSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str
    vm_id: str | None = None
    vm_name: str | None = None
    datacenter: str | None = None
    export_timestamp: datetime | None = None
    export_method: str | None = None


class ManifestVm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cpu: int | None = Field(default=None, ge=1)
    # hyper2kvm wants whole GiB here.
    mem_gb: int | None = Field(default=None, ge=1)
    firmware: Literal["bios", "uefi", "unknown"] = "unknown"
    secureboot: bool = False
    os_hint: str | None = None
    os_version: str | None = None


class ManifestNic(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    mac: str | None = None
    network: str | None = None


class PipelineStage(BaseModel):
    """One hyper2kvm stage; off unless ``enabled``. Extra keys are stage options."""

    model_config = ConfigDict(extra="allow")

    enabled: bool = False


FstabMode = Literal["stabilize-all", "bypath-only", "noop"]


def fix_stage(
    *,
    enabled: bool,
    backup: bool | None = None,
    update_grub: bool | None = None,
    regen_initramfs: bool | None = None,
    fstab_mode: FstabMode | None = None,
    remove_vmware_tools: bool | None = None,
) -> PipelineStage:
    """hyper2kvm's FIX stage with the options its orchestrator reads (``_stage_fix``), named and typed
    here because ``PipelineStage`` keeps any extra key; an option left None is not written, and
    hyper2kvm's own default applies."""
    options = {
        "backup": backup,
        "update_grub": update_grub,
        "regen_initramfs": regen_initramfs,
        "fstab_mode": fstab_mode,
        "remove_vmware_tools": remove_vmware_tools,
    }
    return PipelineStage.model_validate({"enabled": enabled, **{k: v for k, v in options.items() if v is not None}})


class ManifestPipeline(BaseModel):
    inspect: PipelineStage = Field(default_factory=PipelineStage)
    fix: PipelineStage = Field(default_factory=PipelineStage)
    convert: PipelineStage = Field(default_factory=PipelineStage)
    validate_: PipelineStage = Field(default_factory=PipelineStage, alias="validate")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# hyper2kvm's schema names qcow2, raw and vdi; we never enable its CONVERT (qemu-img writes the
# outputs), so output.format records the target format asked for, which may also be vmdk.
OutputFormat = Literal["qcow2", "raw", "vmdk", "vdi"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = get_args(OutputFormat)


class ManifestOutput(BaseModel):
    model_config = ConfigDict(extra="allow")

    directory: str | None = None
    format: OutputFormat = "qcow2"


def as_output_format(value: str) -> OutputFormat:
    """``value`` as a manifest output format; refuse one the manifest cannot hold."""
    for fmt in OUTPUT_FORMATS:
        if fmt == value:
            return fmt
    raise ManifestError(f"output format {value!r} is not one of {', '.join(OUTPUT_FORMATS)}")


class ArtifactManifest(BaseModel):
    model_config = ConfigDict(extra="allow")

    manifest_version: Literal["1.0"] = "1.0"
    source: ManifestSource
    vm: ManifestVm = Field(default_factory=ManifestVm)
    disks: list[ManifestDisk] = Field(min_length=1)
    nics: list[ManifestNic] = Field(default_factory=list)
    pipeline: ManifestPipeline = Field(default_factory=ManifestPipeline)
    output: ManifestOutput = Field(default_factory=ManifestOutput)
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("disks")
    @classmethod
    def _unique_ids(cls, disks: list[ManifestDisk]) -> list[ManifestDisk]:
        seen: set[str] = set()
        for disk in disks:
            if disk.id in seen:
                raise ValueError(f"duplicate disk id {disk.id!r}")
            seen.add(disk.id)
        return disks

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def build_manifest(
    export: ExportResult,
    disks: list[StagedDisk],
    *,
    output_dir: Path | None = None,
    output_format: str = "qcow2",
    pipeline: ManifestPipeline | None = None,
    options: dict[str, Any] | None = None,
) -> ArtifactManifest:
    vm = export.vm
    mem_gb = None if vm.mem_gb is None else max(1, round(vm.mem_gb))
    return ArtifactManifest(
        source=ManifestSource(
            provider=export.provider,
            vm_id=vm.vm_id,
            vm_name=vm.vm_name,
            datacenter=vm.datacenter,
            export_timestamp=export.export_timestamp,
            export_method=export.export_method,
        ),
        vm=ManifestVm(
            cpu=vm.cpu,
            mem_gb=mem_gb,
            firmware=vm.firmware.value if vm.firmware else "unknown",
            secureboot=bool(vm.secureboot),
            os_hint=vm.os_hint,
            os_version=vm.os_version,
        ),
        disks=[
            ManifestDisk(
                id=d.id,
                source_format=d.format,
                bytes=d.size_bytes,
                local_path=str(d.path),
                checksum=d.sha256,
                boot_order_hint=d.boot_order_hint,
                disk_type=d.disk_type,
                label=d.label,
            )
            for d in disks
        ],
        nics=[ManifestNic(id=n.id, mac=n.mac, network=n.network) for n in vm.nics],
        pipeline=pipeline or ManifestPipeline(),
        output=ManifestOutput(directory=str(output_dir) if output_dir else None, format=as_output_format(output_format)),
        options=options or {},
    )


def write_manifest(manifest: ArtifactManifest, directory: Path) -> Path:
    """Write ``artifact-manifest.json`` into ``directory`` atomically."""
    return write_json_atomic(directory / MANIFEST_FILE_NAME, manifest.to_json_dict())


def _read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"manifest {path} does not exist; run the export step first") from None
    except json.JSONDecodeError as error:
        raise ManifestError(f"manifest {path} is not valid JSON ({error}); regenerate it") from None


def load_manifest(path: Path) -> ArtifactManifest:
    data = _read_json(path)
    try:
        return ArtifactManifest.model_validate(data)
    except pydantic.ValidationError as error:
        raise ManifestError(f"manifest {path} breaks Artifact Manifest v1.0: {describe_validation_error(error)}") from None


def detect_provider(path: Path) -> str:
    """Read ``source.provider`` from the manifest's JSON; refuse a missing or unknown one."""
    data = _read_json(path)
    source = data.get("source") if isinstance(data, dict) else None
    provider = source.get("provider") if isinstance(source, dict) else None
    accepted = ", ".join(PROVIDER_NAMES)
    if provider is None:
        raise ProviderDetectionError(f"manifest {path} has no source.provider; expected one of: {accepted}")
    if provider not in PROVIDER_NAMES:
        raise ProviderDetectionError(
            f"manifest {path} names provider {provider!r}, which hyperexport does not know; expected one of: {accepted}"
        )
    return provider
