"""Pydantic models of the KVM output: how to write the domain, what it holds, how to boot-check it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

OVMF_DIR = Path("/usr/share/OVMF")
#: The disk formats a KVM domain attaches.
ATTACHABLE_FORMATS: Final = ("qcow2", "raw")
SAMPLE_MARKER_TEXT = "hyperexport-sample: root filesystem mounted, boot OK"
# A getty's prompt on the serial console ("web01 login: "), or the bootable sample's own line.
DEFAULT_MARKER = r"(?m)^\S+ login:\s*$|" + SAMPLE_MARKER_TEXT  # the text has no regex metacharacters
# Lines after which the guest will not get further: stop at once instead of waiting for the time limit.
DEFAULT_FAILURE_MARKER = (
    r"No bootable device|No bootable option or device was found|Kernel panic - not syncing|sample-initramfs: (no|cannot)"
)


class DomainOptions(BaseModel):
    """Choices the manifest cannot make: where NICs plug in, graphics, machine type, disk bus."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, description="Domain name; default: the source VM's name (made safe).")
    network: str | None = Field(default="default", description="libvirt network for every NIC (unless bridge).")
    bridge: str | None = Field(default=None, description="Host bridge for every NIC; replaces network.")
    graphics: Literal["vnc", "spice", "none"] = "vnc"
    machine: Literal["q35", "pc"] = Field(default="q35", description="UEFI always uses q35.")
    preserve_mac: bool = Field(default=True, description="Give each NIC the source's MAC address.")
    virtio: bool = Field(
        default=True, description="The guest has virtio drivers (hyper2kvm's inspection); False: SATA disks, e1000e NICs."
    )
    disk_format: Literal["qcow2", "raw"] | None = Field(default=None, description="Default: the manifest's output format.")
    memory_mib: int | None = Field(default=None, ge=64, description="Default: the manifest's mem_gb, else 1024.")
    vcpus: int | None = Field(default=None, ge=1, le=512, description="Default: the manifest's cpu, else 1.")
    ovmf_code: Path | None = Field(default=None, description="Default: OVMF_CODE_4M(.secboot).fd from Debian's ovmf.")
    ovmf_vars_template: Path | None = Field(default=None, description="Default: OVMF_VARS_4M(.ms).fd.")
    nvram: Path | None = Field(default=None, description="The VM's own UEFI variables; default: <name>_VARS.fd beside disk 1.")


class DiskPlan(BaseModel):
    id: str
    path: Path
    format: Literal["qcow2", "raw"]
    bus: Literal["virtio", "sata"]
    target: str
    boot_order: int


class NicPlan(BaseModel):
    id: str
    mac: str | None
    model: Literal["virtio", "e1000e"]
    network: str | None
    bridge: str | None


class FirmwarePlan(BaseModel):
    kind: Literal["bios", "uefi"]
    secure_boot: bool = False
    code: Path | None = None
    vars_template: Path | None = None
    nvram: Path | None = None


class DomainPlan(BaseModel):
    """Everything the domain XML and the boot check's qemu command line are made from."""

    name: str
    title: str
    description: str
    machine: Literal["q35", "pc"]
    memory_mib: int
    vcpus: int
    firmware: FirmwarePlan
    disks: list[DiskPlan] = Field(min_length=1)
    nics: list[NicPlan] = Field(default_factory=list)
    graphics: Literal["vnc", "spice", "none"]
    clock_offset: Literal["utc", "localtime"] = "utc"
    warnings: list[str] = Field(default_factory=list)


class BootCheckOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    marker: str = Field(default=DEFAULT_MARKER, description="Regex the serial console must show for a pass.")
    failure_marker: str | None = Field(default=DEFAULT_FAILURE_MARKER, description="Regex that fails the check at once.")
    time_limit_seconds: float = Field(default=180.0, gt=0, le=3600)
    accel: Literal["auto", "kvm", "tcg"] = Field(default="auto", description="auto: KVM when it boots, else TCG.")
    kvm_probe_seconds: float = Field(
        default=30.0, gt=0, description="auto: a KVM boot that shows no marker by then is retried under TCG."
    )
    memory_mib: int = Field(default=512, ge=64, le=16384, description="Guest memory for the check (not the domain's).")
    tail_lines: int = Field(default=20, ge=1, le=500)

    @field_validator("marker", "failure_marker")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        try:
            re.compile(value or "")
        except re.error as error:
            raise ValueError(f"marker is not a valid regular expression: {error}") from None
        return value


class BootCheckResult(BaseModel):
    passed: bool
    accel: Literal["kvm", "tcg"]
    seconds_to_marker: float | None = None
    seconds: float = Field(description="Wall time of the attempt that gave the verdict.")
    console_tail: str = ""
    message: str
    kvm_fallback: str | None = Field(default=None, description="Why KVM was abandoned for TCG, when it was.")


class KvmOutput(BaseModel):
    """What a migration makes of its converted disks beyond the disks: the domain XML, and proof that it boots."""

    model_config = ConfigDict(extra="forbid")

    domain: bool = Field(default=True, title="Write the libvirt domain", description="Write <vm>.xml beside the disks.")
    domain_options: DomainOptions = Field(default_factory=DomainOptions, title="Domain")
    define_uri: str | None = Field(
        default=None, title="Define on libvirt URI", description="Run virsh define on this libvirt URI (e.g. qemu:///system)."
    )
    boot_check: bool = Field(default=False, title="Boot check", description="Boot the converted VM under QEMU (never writing its disks) and require the marker.")
    boot_check_options: BootCheckOptions = Field(default_factory=BootCheckOptions, title="Boot check settings")


class DomainResult(BaseModel):
    """The domain written for the converted VM."""

    name: str
    xml_path: Path
    validation: str = Field(description="virt-xml-validate's verdict.")
    defined_on: str | None = None
    warnings: list[str] = Field(default_factory=list)

    def start_commands(self) -> list[str]:
        define = [] if self.defined_on else [f"virsh define {self.xml_path}"]
        return [*define, f"virsh start {self.name}", f"virsh console {self.name}"]
