"""The VM as the host describes it (Get-VM, Get-VMHardDiskDrive, Get-VHD, Get-VMNetworkAdapter, Get-VMFirmware),
checked into pydantic models, and the access checks that come before any work."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ...errors import AccessDeniedError, InvalidInputError, SourceNotFoundError, TransferError
from ...models import NicInfo, VmInfo
from ...models.export import Firmware
from .powershell import HostError, HypervHost

MAX_DRIVES = 256


def as_list(value: Any) -> list[Any]:
    """ConvertTo-Json writes a one-element array as that element and an empty one as null."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @field_validator("*", mode="before")
    @classmethod
    def _lists(cls, value: Any, info: Any) -> Any:
        annotation = str(cls.model_fields[info.field_name].annotation)
        return as_list(value) if annotation.startswith("list") else value


class Drive(_Answer):
    controller_type: str = Field(max_length=16)
    controller: int = Field(ge=0, le=64)
    location: int = Field(ge=0, le=64)
    path: str | None = Field(default=None, max_length=32767)
    disk_number: int | None = None
    vhd_format: str | None = None
    vhd_type: str | None = None
    parent_path: str | None = Field(default=None, max_length=32767)
    size: int | None = Field(default=None, ge=0)
    file_size: int | None = Field(default=None, ge=0)

    @property
    def slot(self) -> tuple[str, int, int]:
        return (self.controller_type.upper(), self.controller, self.location)

    @property
    def where(self) -> str:
        return f"{self.controller_type} {self.controller}:{self.location}"


class BootEntry(_Answer):
    controller_type: str
    controller: int
    location: int


class Nic(_Answer):
    name: str | None = Field(default=None, max_length=256)
    mac: str | None = Field(default=None, max_length=64)
    switch: str | None = Field(default=None, max_length=256)


class VmDescription(_Answer):
    id: str = Field(max_length=64)
    name: str = Field(max_length=256)  # Hyper-V's own limit is 100 characters
    state: str | None = Field(default=None, max_length=64)
    generation: int = Field(ge=1, le=2)
    processors: int | None = Field(default=None, ge=1)
    memory_bytes: int | None = Field(default=None, ge=0)
    secure_boot: bool | None = None
    drives: list[Drive] = Field(default_factory=list, max_length=MAX_DRIVES)
    boot_order: list[BootEntry] = Field(default_factory=list, max_length=1024)
    nics: list[Nic] = Field(default_factory=list, max_length=1024)  # Hyper-V allows 64 adapters a VM
    checkpoints: list[str] = Field(default_factory=list, max_length=100_000)

    def ordered_drives(self) -> list[Drive]:
        """The drives with the boot disk first: generation 2 by the firmware's boot order, generation 1 (BIOS
        boots the first IDE disk) by controller; the rest in controller order."""
        drives = sorted(self.drives, key=lambda d: (d.controller_type.upper() != "IDE", d.controller_type, d.controller, d.location))
        if self.generation == 2:
            first = next((b for b in self.boot_order if any(d.slot == (b.controller_type.upper(), b.controller, b.location) for d in drives)), None)
            if first is not None:
                slot = (first.controller_type.upper(), first.controller, first.location)
                drives.sort(key=lambda d: d.slot != slot)
        return drives

    def vm_info(self) -> VmInfo:
        nics = [NicInfo(id=f"nic-{i}", mac=_mac(n.mac), network=n.switch) for i, n in enumerate(self.nics)]
        return VmInfo(
            vm_id=self.id, vm_name=self.name, cpu=self.processors,
            mem_gb=round(self.memory_bytes / 2**30, 3) if self.memory_bytes else None,
            firmware=Firmware.uefi if self.generation == 2 else Firmware.bios,
            secureboot=self.secure_boot if self.generation == 2 else False, nics=nics,
        )  # fmt: skip


def _mac(value: str | None) -> str | None:
    """Hyper-V writes 00155D010203; VmInfo wants 00:15:5d:01:02:03 (anything else is dropped)."""
    digits = re.sub(r"[^0-9A-Fa-f]", "", value or "")
    if len(digits) != 12 or digits == "0" * 12:
        return None
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2)).lower()


def parsed(model: type[BaseModel], answer: Any, what: str) -> Any:
    try:
        return model.model_validate(answer)
    except ValidationError as error:
        raise TransferError(f"the Hyper-V host's answer to {what} is not what hyperexport expects: {error.errors()[0]['msg']}") from None


class Identity(_Answer):
    user: str = ""
    computer: str = ""
    hyperv_admin: bool = False
    administrator: bool = False


def check_access(host: HypervHost) -> Identity:
    """Refuse a user that is neither in Hyper-V Administrators nor an administrator, before any work."""
    who: Identity = parsed(Identity, host.run("whoami"), "whoami")
    if not (who.hyperv_admin or who.administrator):
        raise AccessDeniedError(
            f"{who.user or host.login.user!r} is not a member of Hyper-V Administrators on {who.computer or host.login.host}, "
            "so it cannot checkpoint or export VMs. Add it on the host (Add-LocalGroupMember -Group 'Hyper-V "
            "Administrators' -Member USER), then sign in again, or use a user that is.",
            field="credentials_block",
        )
    return who


class _Match(_Answer):
    id: str
    name: str
    state: str | None = None


class _Found(_Answer):
    matches: list[_Match] = Field(default_factory=list)
    names: list[str] = Field(default_factory=list)


def find_vm(host: HypervHost, name: str | None, vm_id: str | None) -> _Match:
    """The one VM of that id, or of exactly that name (several: listed, pick one by vm_id)."""
    found: _Found = parsed(_Found, host.run("find_vm", name=name, id=vm_id), "Get-VM")
    asked = f"id {vm_id}" if vm_id else f"named {name!r}"
    field = "source.vm_id" if vm_id else "source.vm"
    if not found.matches:
        known = ", ".join(repr(n) for n in found.names[:20]) or "none"
        raise SourceNotFoundError(
            f"there is no VM {asked} on {host.login.host} (names are matched exactly; VMs there: {known}). "
            "Check the name, or give the VM's id (Get-VM | Select Name, Id).",
            field=field,
        )
    if len(found.matches) > 1:
        listed = "; ".join(f"{m.name!r} id {m.id} ({m.state or 'state unknown'})" for m in found.matches)
        raise InvalidInputError(
            f"{len(found.matches)} VMs are {asked} on {host.login.host}: {listed}. Give the one to migrate by its vm_id.",
            field="source.vm_id",
        )
    return found.matches[0]


def describe_vm(host: HypervHost, vm_id: str) -> VmDescription:
    try:
        answer = host.run("describe_vm", id=vm_id)
    except HostError as error:
        if error.not_found():
            raise SourceNotFoundError(f"VM {vm_id} is gone from {host.login.host}: {error.message}", field="source.vm_id") from None
        raise
    return parsed(VmDescription, answer, "Get-VM / Get-VMHardDiskDrive")


def refuse_unreadable(vm: VmDescription, method: str) -> None:
    """Disks hyperexport cannot read whole: pass-through disks, differencing chains, no disks at all."""
    if not vm.drives:
        raise InvalidInputError(f"VM {vm.name!r} ({vm.id}) has no virtual hard disk to migrate", field="source.vm")
    for drive in vm.drives:
        if not drive.path:
            raise InvalidInputError(
                f"VM {vm.name!r} has a pass-through disk at {drive.where} (physical disk {drive.disk_number}): Hyper-V "
                "cannot take a checkpoint of it or export it, and it is no file to read over SMB. Detach it, or copy "
                "it into a VHDX (New-VHD -SourceDisk) and attach that, then run again.",
                field="source.vm",
            )
        if (drive.vhd_type or "").lower() == "differencing" or drive.path.lower().endswith(".avhdx") or drive.parent_path:
            checkpoints = ", ".join(repr(c) for c in vm.checkpoints) or "none listed"
            left = [c[len("hyperexport-"):] for c in vm.checkpoints if c.startswith("hyperexport-")]
            ours = (f" ({', '.join(left)}: left by hyperexport runs; hyperexport --provider hyperv --cleanup-run RUN_ID "
                    "removes one)") if left else ""  # fmt: skip
            raise InvalidInputError(
                f"the disk of VM {vm.name!r} at {drive.where} is a differencing disk ({drive.path}, parent "
                f"{drive.parent_path or 'unknown'}): the VM has checkpoints ({checkpoints}). qemu-img cannot read VHDX "
                "differencing chains, and the parent alone is an old state of the disk, so hyperexport will not "
                f"read it ({method}). Merge the chain first: delete the VM's checkpoints (Remove-VMCheckpoint; "
                f"Hyper-V merges them into the disk){ours} and run again.",
                field="source.vm",
            )
        if (drive.vhd_format or "VHDX").upper() not in ("VHDX", "VHD"):
            raise InvalidInputError(f"the disk at {drive.where} is {drive.vhd_format}, not VHDX or VHD", field="source.vm")
