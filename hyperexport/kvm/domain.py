"""libvirt domain XML for a migrated VM, its schema check (virt-xml-validate) and ``virsh define``.

Every string from the manifest goes through ElementTree (which escapes ``<``, ``&`` and quotes) after the
characters XML cannot carry at all are replaced, so a hostile VM name is text, never markup.
"""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from .. import procs
from ..errors import ConverterNotFoundError, InvalidInputError, ValidationError
from ..fsutil import atomic_output
from ..manifest import ArtifactManifest
from .models import DiskPlan, DomainOptions, DomainPlan, NicPlan
from .plan import plan_domain

__all__ = ["DomainOptions", "build_domain_xml", "define_domain", "domain_xml", "validate_domain_xml", "write_domain_xml"]

_TOOL = procs.Limits(timeout_s=60.0, memory_bytes=1 * 2**30, cpu_s=60)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k.rstrip("_"): v for k, v in attrs.items()})
    if text is not None:
        element.text = text
    return element


def _os(domain: ET.Element, plan: DomainPlan) -> None:
    os_el = _sub(domain, "os")
    _sub(os_el, "type", "hvm", arch="x86_64", machine=plan.machine)
    fw = plan.firmware
    if fw.kind == "uefi":
        _sub(os_el, "loader", str(fw.code), readonly="yes", secure="yes" if fw.secure_boot else "no", type="pflash")
        _sub(os_el, "nvram", str(fw.nvram), template=str(fw.vars_template))
    features = _sub(domain, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    if fw.secure_boot:
        _sub(features, "smm", state="on")  # OVMF's secure-boot build needs SMM to protect its variables


def _disk(devices: ET.Element, disk: DiskPlan) -> None:
    element = _sub(devices, "disk", type="file", device="disk")
    _sub(element, "driver", name="qemu", type=disk.format, discard="unmap")
    _sub(element, "source", file=str(disk.path))
    _sub(element, "target", dev=disk.target, bus=disk.bus)
    _sub(element, "boot", order=str(disk.boot_order))
    _sub(element, "serial", disk.id[:20])


def _nic(devices: ET.Element, nic: NicPlan) -> None:
    if nic.bridge:
        element = _sub(devices, "interface", type="bridge")
        _sub(element, "source", bridge=nic.bridge)
    elif nic.network:
        element = _sub(devices, "interface", type="network")
        _sub(element, "source", network=nic.network)
    else:
        element = _sub(devices, "interface", type="user")
    if nic.mac:
        _sub(element, "mac", address=nic.mac)
    _sub(element, "model", type=nic.model)


def _console_and_graphics(devices: ET.Element, plan: DomainPlan) -> None:
    serial = _sub(devices, "serial", type="pty")
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="pty")
    _sub(console, "target", type="serial", port="0")
    agent = _sub(devices, "channel", type="unix")
    _sub(agent, "target", type="virtio", name="org.qemu.guest_agent.0")
    if plan.graphics == "none":
        video = _sub(devices, "video")
        _sub(video, "model", type="none")
        return
    graphics = _sub(devices, "graphics", type=plan.graphics, autoport="yes", listen="127.0.0.1")
    _sub(graphics, "listen", type="address", address="127.0.0.1")
    video = _sub(devices, "video")
    _sub(video, "model", type="qxl" if plan.graphics == "spice" else "vga")


def domain_xml(plan: DomainPlan) -> str:
    """The ``<domain type="kvm">`` document of ``plan``."""
    domain = ET.Element("domain", type="kvm")
    _sub(domain, "name", plan.name)
    _sub(domain, "title", plan.title)
    _sub(domain, "description", plan.description)
    _sub(domain, "memory", str(plan.memory_mib), unit="MiB")
    _sub(domain, "vcpu", str(plan.vcpus), placement="static")
    _os(domain, plan)
    _sub(domain, "cpu", mode="host-model")
    _sub(domain, "clock", offset=plan.clock_offset)
    _sub(domain, "on_poweroff", "destroy")
    _sub(domain, "on_reboot", "restart")
    _sub(domain, "on_crash", "destroy")
    devices = _sub(domain, "devices")
    for disk in plan.disks:
        _disk(devices, disk)
    for nic in plan.nics:
        _nic(devices, nic)
    _console_and_graphics(devices, plan)
    if plan.disks[0].bus == "virtio":
        _sub(devices, "memballoon", model="virtio")
        rng = _sub(devices, "rng", model="virtio")
        _sub(rng, "backend", "/dev/urandom", model="random")
    ET.indent(domain)
    return ET.tostring(domain, encoding="unicode") + "\n"


def build_domain_xml(manifest: ArtifactManifest, disk_paths: Sequence[Path], options: DomainOptions | None = None) -> str:
    """libvirt domain XML for the converted ``disk_paths`` (in the manifest's disk order)."""
    return domain_xml(plan_domain(manifest, disk_paths, options))


def write_domain_xml(xml: str, path: Path) -> Path:
    """Write ``xml`` to ``path`` under a temporary name first; nothing stands under ``path`` until it is whole."""
    with atomic_output(path) as partial:
        partial.write_text(xml, encoding="utf-8")
    return path


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ConverterNotFoundError(f"{name} is not installed; install it with 'apt-get install libvirt-clients'")
    return found


def validate_domain_xml(path: Path) -> str:
    """Check ``path`` against libvirt's domain schema; returns virt-xml-validate's verdict, raises ValidationError."""
    done = procs.run_bounded([_tool("virt-xml-validate"), str(Path(path).absolute()), "domain"], limits=_TOOL,
                             what="virt-xml-validate")
    verdict = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        raise ValidationError(f"{path} is not a valid libvirt domain: {verdict[-2000:]}; report this as a hyperexport bug")
    return verdict


def define_domain(xml_path: Path, uri: str = "qemu:///session") -> str:
    """``virsh --connect uri define --validate xml_path``; returns virsh's answer."""
    if not uri or uri.startswith("-"):
        raise InvalidInputError(f"{uri!r} is not a libvirt connection URI (for example qemu:///system)")
    done = procs.run_bounded([_tool("virsh"), "--connect", uri, "define", "--validate", str(Path(xml_path).absolute())],
                             limits=_TOOL, what=f"virsh define on {uri}")
    answer = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        raise ValidationError(f"virsh could not define {xml_path} on {uri}: {answer[-2000:]}; check that libvirtd runs "
                              "and that the URI is right (virsh --connect URI list)")
    return answer
