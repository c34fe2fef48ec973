"""From an (untrusted) Artifact Manifest and the converted disks to a DomainPlan."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from ..errors import InvalidInputError
from ..manifest import ArtifactManifest
from .models import ATTACHABLE_FORMATS, OVMF_DIR, DiskPlan, DomainOptions, DomainPlan, FirmwarePlan, NicPlan

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
# XML 1.0 refuses these characters even escaped; a manifest may hold them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.+-]+")


def xml_text(value: str) -> str:
    """``value`` without the characters XML cannot carry (the escaping of the rest is ElementTree's)."""
    return _NOT_XML.sub("?", value)


def one_line(value: str) -> str:
    return " ".join(xml_text(value).split())


def domain_name(raw: str | None) -> str:
    """A libvirt domain name (no '/', no newline; also a safe file name) from whatever the source called the VM."""
    name = _UNSAFE_NAME.sub("-", raw or "").strip("-.")[:64]
    return name or "migrated-vm"


def _disk_target(bus: str, index: int) -> str:
    prefix = "vd" if bus == "virtio" else "sd"
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("a") + rest) + letters
    return prefix + letters


def _firmware(manifest: ArtifactManifest, options: DomainOptions, name: str, first_disk: Path) -> FirmwarePlan:
    if manifest.vm.firmware != "uefi":
        return FirmwarePlan(kind="bios")
    secure = manifest.vm.secureboot
    code = options.ovmf_code or OVMF_DIR / ("OVMF_CODE_4M.secboot.fd" if secure else "OVMF_CODE_4M.fd")
    template = options.ovmf_vars_template or OVMF_DIR / ("OVMF_VARS_4M.ms.fd" if secure else "OVMF_VARS_4M.fd")
    nvram = options.nvram or first_disk.parent / f"{name}_VARS.fd"
    return FirmwarePlan(kind="uefi", secure_boot=secure, code=code.absolute(), vars_template=template.absolute(), nvram=nvram.absolute())


def plan_domain(manifest: ArtifactManifest, disk_paths: Sequence[Path], options: DomainOptions | None = None) -> DomainPlan:
    """``disk_paths`` are the converted disks, in the order of ``manifest.disks``."""
    options = options or DomainOptions()
    if len(disk_paths) != len(manifest.disks):
        raise InvalidInputError(
            f"{len(disk_paths)} converted disk(s) for {len(manifest.disks)} disk(s) in the manifest; "
            "pass one converted path per manifest disk, in the manifest's order"
        )
    source = manifest.source
    source_name = source.vm_name or source.vm_id or ""
    name = domain_name(options.name or source_name)
    warnings: list[str] = []
    fmt = options.disk_format or manifest.output.format
    if fmt not in ATTACHABLE_FORMATS:
        raise InvalidInputError(f"disks in {fmt} cannot be attached to a KVM domain; convert them to qcow2 or raw")
    bus: Literal["virtio", "sata"] = "virtio" if options.virtio else "sata"
    ordered = sorted(zip(manifest.disks, disk_paths), key=lambda pair: pair[0].boot_order_hint)
    disks = [
        DiskPlan(id=d.id, path=Path(p).absolute(), format=fmt, bus=bus, target=_disk_target(bus, i), boot_order=i + 1)
        for i, (d, p) in enumerate(ordered)
    ]
    nics = []
    for nic in manifest.nics:
        mac = (nic.mac or "").strip().lower()
        if options.preserve_mac and mac and not (_MAC.match(mac) and int(mac[:2], 16) & 1 == 0):
            warnings.append(f"NIC {one_line(nic.id)!r}: source MAC {one_line(mac)!r} is not a unicast MAC; libvirt will assign one")
            mac = ""
        nics.append(NicPlan(
            id=one_line(nic.id), mac=mac if options.preserve_mac and mac else None,
            model="virtio" if options.virtio else "e1000e",
            network=None if options.bridge else options.network, bridge=options.bridge,
        ))
    memory = options.memory_mib or (manifest.vm.mem_gb * 1024 if manifest.vm.mem_gb else 1024)
    firmware = _firmware(manifest, options, name, disks[0].path)
    windows = "windows" in (manifest.vm.os_hint or "").lower()
    return DomainPlan(
        name=name,
        title=one_line(source_name)[:200] or name,
        description=xml_text(f"Migrated by hyperexport from {source.provider} (VM id {source.vm_id or 'unknown'})"),
        machine="q35" if firmware.kind == "uefi" else options.machine,
        memory_mib=memory,
        vcpus=options.vcpus or manifest.vm.cpu or 1,
        firmware=firmware,
        disks=disks,
        nics=nics,
        graphics=options.graphics,
        clock_offset="localtime" if windows else "utc",
        warnings=warnings,
    )
