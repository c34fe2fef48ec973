"""Domain XML from the manifest, checked against libvirt's schema with the real virt-xml-validate."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from hyperexport.errors import InvalidInputError, ValidationError
from hyperexport.kvm.domain import (
    build_domain_xml,
    define_domain,
    validate_domain_xml,
    write_domain_xml,
)
from hyperexport.kvm.models import DomainOptions
from hyperexport.kvm.plan import plan_domain

from .helpers import sample_manifest


def _written_and_valid(xml: str, tmp_path: Path, name: str = "vm.xml") -> ET.Element:
    path = write_domain_xml(xml, tmp_path / name)
    assert "validates" in validate_domain_xml(path)
    return ET.parse(path).getroot()


def test_bios_virtio_domain(tmp_path):
    disks = [tmp_path / "disk-0.qcow2", tmp_path / "disk-1.qcow2"]
    manifest = sample_manifest(disks=2)
    # The second disk boots first: boot order follows boot_order_hint, not the manifest's order.
    manifest.disks[0].boot_order_hint, manifest.disks[1].boot_order_hint = 1, 0
    root = _written_and_valid(build_domain_xml(manifest, disks, DomainOptions(network="default")), tmp_path)
    assert root.findtext("name") == "bootable-sample"
    assert root.findtext("vcpu") == "2" and root.find("memory").text == "1024" and root.find("memory").get("unit") == "MiB"
    assert root.find("os/type").get("machine") == "q35" and root.find("os/loader") is None
    order = [(d.find("source").get("file"), d.find("target").get("bus"), d.find("target").get("dev"), d.find("boot").get("order"))
             for d in root.iterfind("devices/disk")]
    assert order == [(str(disks[1]), "virtio", "vda", "1"), (str(disks[0]), "virtio", "vdb", "2")]
    assert [d.find("driver").get("type") for d in root.iterfind("devices/disk")] == ["qcow2", "qcow2"]
    nic = root.find("devices/interface")
    assert nic.get("type") == "network" and nic.find("source").get("network") == "default"
    assert nic.find("mac").get("address") == "00:50:56:aa:bb:01" and nic.find("model").get("type") == "virtio"
    assert root.find("devices/console/target").get("type") == "serial"
    assert root.find("devices/channel/target").get("name") == "org.qemu.guest_agent.0"
    assert root.find("devices/graphics").get("type") == "vnc"


@pytest.mark.parametrize("secure", [False, True])
def test_uefi_domain(tmp_path, secure):
    disk = tmp_path / "disk-0.qcow2"
    root = _written_and_valid(build_domain_xml(sample_manifest(firmware="uefi", secureboot=secure), [disk]), tmp_path)
    loader, nvram = root.find("os/loader"), root.find("os/nvram")
    assert root.find("os/type").get("machine") == "q35"
    assert loader.get("type") == "pflash" and loader.get("readonly") == "yes"
    assert loader.get("secure") == ("yes" if secure else "no")
    assert Path(loader.text).is_file() and Path(nvram.get("template")).is_file()  # Debian's ovmf files, really there
    assert Path(loader.text).name == ("OVMF_CODE_4M.secboot.fd" if secure else "OVMF_CODE_4M.fd")
    assert nvram.text == str(tmp_path / "bootable-sample_VARS.fd")
    assert (root.find("features/smm") is not None) == secure


def test_sata_domain_for_a_guest_without_virtio(tmp_path):
    options = DomainOptions(virtio=False, bridge="br0", graphics="spice", machine="pc", preserve_mac=False)
    root = _written_and_valid(build_domain_xml(sample_manifest(disks=2), [tmp_path / "a.qcow2", tmp_path / "b.qcow2"], options), tmp_path)
    assert [(d.find("target").get("bus"), d.find("target").get("dev")) for d in root.iterfind("devices/disk")] == [
        ("sata", "sda"), ("sata", "sdb")]
    nic = root.find("devices/interface")
    assert nic.get("type") == "bridge" and nic.find("source").get("bridge") == "br0"
    assert nic.find("model").get("type") == "e1000e" and nic.find("mac") is None
    assert root.find("devices/graphics").get("type") == "spice" and root.find("os/type").get("machine") == "pc"
    assert root.find("devices/memballoon") is None  # virtio devices only for guests with virtio drivers


def test_no_graphics_and_raw_disks(tmp_path):
    root = _written_and_valid(build_domain_xml(sample_manifest(fmt="raw"), [tmp_path / "d.raw"], DomainOptions(graphics="none")), tmp_path)
    assert root.find("devices/graphics") is None and root.find("devices/video/model").get("type") == "none"
    assert root.find("devices/disk/driver").get("type") == "raw"


HOSTILE = 'web01</name><devices><disk type="file"><source file="/etc/shadow"/></disk></devices><name>x & "q" \'s\'\n\x01\x1b]'


def test_hostile_names_are_text_never_markup(tmp_path):
    manifest = sample_manifest(name=HOSTILE, nics=[
        {"id": "nic0\"/><interface type='direct'>", "mac": "00:50:56:aa:bb:01"},
        {"id": "nic1", "mac": "<mac address='x'/>"},
    ])
    manifest.source.vm_id = "]]><!ENTITY x SYSTEM 'file:///etc/passwd'>&x;"
    disk = tmp_path / 'out dir & "quotes" <x>' / "disk-0.qcow2"
    xml = build_domain_xml(manifest, [disk])
    root = _written_and_valid(xml, tmp_path)
    assert "<!ENTITY" not in xml and "/etc/shadow\"/>" not in xml
    assert [d.find("source").get("file") for d in root.iterfind("devices/disk")] == [str(disk)]
    assert len(root.findall("name")) == 1 and "/" not in root.findtext("name") and "\n" not in root.findtext("name")
    assert root.findtext("title").startswith("web01</name><devices>") and "\n" not in root.findtext("title")
    assert "]]><!ENTITY x SYSTEM" in root.findtext("description")
    assert [i.get("type") for i in root.iterfind("devices/interface")] == ["network", "network"]
    assert root.find("devices/interface[2]/mac") is None  # a MAC that is not one is dropped, with a warning
    assert any("not a unicast MAC" in w for w in plan_domain(manifest, [disk]).warnings)


def test_invalid_xml_is_reported(tmp_path):
    broken = tmp_path / "broken.xml"
    broken.write_text('<domain type="kvm"><name>x</name><memory>lots</memory></domain>\n')
    with pytest.raises(ValidationError, match="is not a valid libvirt domain"):
        validate_domain_xml(broken)


def test_one_converted_path_per_manifest_disk(tmp_path):
    with pytest.raises(InvalidInputError, match="one converted path per manifest disk"):
        build_domain_xml(sample_manifest(disks=2), [tmp_path / "only-one.qcow2"])


def test_virsh_defines_the_domain_on_the_test_driver(tmp_path):
    path = write_domain_xml(build_domain_xml(sample_manifest(firmware="uefi"), [tmp_path / "disk-0.qcow2"]), tmp_path / "vm.xml")
    assert "Domain 'bootable-sample' defined" in define_domain(path, "test:///default")
    with pytest.raises(InvalidInputError, match="connection URI"):
        define_domain(path, "--help")
