"""Read an OVF descriptor: its disks in boot order, and the VM's CPU, memory, firmware and NICs."""

from __future__ import annotations

import re
from pathlib import Path

import defusedxml
import defusedxml.ElementTree as ET
from pydantic import BaseModel

from .errors import InvalidInputError
from .models.export import Firmware, NicInfo, VmInfo

_NS = {
    "ovf": "http://schemas.dmtf.org/ovf/envelope/1",
    "rasd": "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData",
    "vmw": "http://www.vmware.com/schema/ovf",
}
_OVF = "{%s}" % _NS["ovf"]
_VMW = "{%s}" % _NS["vmw"]
_RESOURCE_CPU, _RESOURCE_MEMORY, _RESOURCE_NIC, _RESOURCE_DISK = "3", "4", "10", "17"
_UNIT = re.compile(r"byte\s*\*\s*2\^(\d+)")


class OvfDisk(BaseModel):
    disk_id: str
    href: str
    capacity_bytes: int | None = None
    file_size: int | None = None
    stream_optimized: bool = False
    order: int


class OvfDescriptor(BaseModel):
    vm: VmInfo
    disks: list[OvfDisk]


def _units(text: str | None) -> int:
    match = _UNIT.search(text or "")
    if match:
        return 2 ** min(int(match.group(1)), 80)
    return {"kilobytes": 2**10, "megabytes": 2**20, "gigabytes": 2**30}.get((text or "").lower(), 1)


def _int(text: str, what: str, path: Path) -> int:
    try:
        value = int(text)
    except ValueError:
        raise InvalidInputError(f"{path}: {what} {text[:40]!r} is not a whole number; the descriptor is corrupt, re-export the VM") from None
    if value < 0:
        raise InvalidInputError(f"{path}: {what} {value} is negative; the descriptor is corrupt, re-export the VM")
    return value


def _rasd(item, name: str) -> str | None:
    node = item.find(f"rasd:{name}", _NS)
    return None if node is None or node.text is None else node.text.strip()


_OVF_LIMIT = 16 * 2**20


def _xml_attack(error: Exception) -> str:
    if isinstance(error, defusedxml.EntitiesForbidden):
        return "declares XML entities (an entity-expansion attack such as 'billion laughs')"
    if isinstance(error, defusedxml.ExternalReferenceForbidden):
        return "refers to an external entity or DTD (an attempt to read other files or URLs)"
    if isinstance(error, defusedxml.DTDForbidden):
        return "has a DTD, which an OVF descriptor never needs"
    return f"uses an XML feature that is refused for safety ({type(error).__name__})"


def parse_ovf(path: Path) -> OvfDescriptor:
    from .paths import require_regular_file

    st = require_regular_file(path, "OVF descriptor")
    if st.st_size > _OVF_LIMIT:
        raise InvalidInputError(f"{path} is {st.st_size} bytes, too large for an OVF descriptor (limit {_OVF_LIMIT}); refusing it")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as error:
        raise InvalidInputError(f"{path} is not a readable OVF descriptor ({error}); re-export the VM") from None
    except (defusedxml.DefusedXmlException, ValueError) as error:
        raise InvalidInputError(f"{path} {_xml_attack(error)}; refusing the descriptor. Re-export the VM from its hypervisor.") from None
    files = {
        f.get(f"{_OVF}id"): (f.get(f"{_OVF}href"), f.get(f"{_OVF}size"))
        for f in root.iterfind("ovf:References/ovf:File", _NS)
    }
    section_disks = {}
    for disk in root.iterfind("ovf:DiskSection/ovf:Disk", _NS):
        file_ref = disk.get(f"{_OVF}fileRef")
        if file_ref not in files:
            raise InvalidInputError(f"{path}: disk {disk.get(f'{_OVF}diskId')} refers to unknown file {file_ref!r}")
        capacity = disk.get(f"{_OVF}capacity")
        href, size = files[file_ref]
        section_disks[disk.get(f"{_OVF}diskId")] = dict(
            href=href,
            file_size=_int(size, "File size", path) if size else None,
            capacity_bytes=_int(capacity, "Disk capacity", path) * _units(disk.get(f"{_OVF}capacityAllocationUnits")) if capacity else None,
            stream_optimized="streamOptimized" in (disk.get(f"{_OVF}format") or ""),
        )
    if not section_disks:
        raise InvalidInputError(f"{path} lists no disks (no DiskSection/Disk); nothing to migrate")

    system = root.find("ovf:VirtualSystem", _NS)
    if system is None:
        raise InvalidInputError(f"{path} has no VirtualSystem; only single-VM OVF packages are supported")
    vm = VmInfo(vm_id=system.get(f"{_OVF}id"), vm_name=(system.findtext("ovf:Name", None, _NS) or system.get(f"{_OVF}id")))
    disk_order: list[str] = []
    nics: list[NicInfo] = []
    for item in system.iterfind("ovf:VirtualHardwareSection/ovf:Item", _NS):
        kind = _rasd(item, "ResourceType")
        if kind == _RESOURCE_CPU:
            vm.cpu = _int(_rasd(item, "VirtualQuantity") or "1", "CPU VirtualQuantity", path)
        elif kind == _RESOURCE_MEMORY:
            quantity = _int(_rasd(item, "VirtualQuantity") or "0", "memory VirtualQuantity", path)
            unit = _units(_rasd(item, "AllocationUnits") or "byte * 2^20")
            vm.mem_gb = quantity * unit / 2**30 if quantity else None
        elif kind == _RESOURCE_NIC:
            mac = _rasd(item, "Address")
            nics.append(NicInfo(id=f"nic{len(nics)}", mac=mac.lower() if mac else None, network=_rasd(item, "Connection")))
        elif kind == _RESOURCE_DISK:
            resource = _rasd(item, "HostResource") or ""
            disk_id = resource.rsplit("/", 1)[-1]
            if disk_id in section_disks and disk_id not in disk_order:
                disk_order.append(disk_id)
    vm.nics = nics
    # OVF producers (VMware, VirtualBox) write a firmware key only for EFI guests.
    vm.firmware = Firmware.bios
    for config in system.iter(f"{_VMW}Config"):
        if config.get(f"{_VMW}key") == "firmware":
            vm.firmware = Firmware.uefi if config.get(f"{_VMW}value") == "efi" else Firmware.bios
    os_section = system.find("ovf:OperatingSystemSection", _NS)
    if os_section is not None:
        description = os_section.findtext("ovf:Description", None, _NS)
        os_type = os_section.get(f"{_VMW}osType") or description or ""
        vm.os_hint = "windows" if "win" in os_type.lower() else ("linux" if os_type else None)
        vm.os_version = os_type or None
    disk_order += [d for d in section_disks if d not in disk_order]
    disks = [OvfDisk(disk_id=d, order=i, **section_disks[d]) for i, d in enumerate(disk_order)]
    return OvfDescriptor(vm=vm, disks=disks)
