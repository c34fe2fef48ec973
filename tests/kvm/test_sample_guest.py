"""The bootable sample's parts: partition table, boot code, initramfs, modules in load order, and its OVA."""

from __future__ import annotations

import gzip
import subprocess
import tarfile

from hyperexport.kvm.initramfs import CpioEntry, cpio_newc
from hyperexport.kvm.kernel import find_host_kernel, module_load_order
from hyperexport.kvm.sample_ova import SAMPLE_MAC, make_bootable_ova
from hyperexport.ovf import parse_ovf


def test_disk_layout(bootable_raw):
    table = subprocess.run(["sfdisk", "--dump", str(bootable_raw)], capture_output=True, text=True, timeout=30, check=True).stdout
    assert "type=e, bootable" in table and "type=83" in table
    head = bootable_raw.read_bytes()[:512]
    assert head[510:] == b"\x55\xaa" and head[:440].strip(b"\0"), "no MBR boot code"
    listing = subprocess.run(["mdir", "-a", "-b", "-i", f"{bootable_raw}@@1M", "::/", "::/EFI/BOOT"], capture_output=True, text=True,
                             timeout=30, check=True, env={"MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin"}).stdout
    for name in ("VMLINUZ", "INITRD.IMG", "LDLINUX.SYS", "SYSLINUX.CFG", "BOOTX64.EFI"):
        assert name.lower() in listing.lower(), listing


def test_modules_load_after_their_dependencies():
    order = [path.name.split(".ko")[0] for path in module_load_order(find_host_kernel())]
    for before, after in [("virtio", "virtio_pci"), ("virtio_ring", "virtio_blk"), ("libata", "ahci"),
                          ("scsi_mod", "sd_mod"), ("jbd2", "ext4"), ("mbcache", "ext4")]:
        assert order.index(before) < order.index(after), order
    assert "crc32c_generic" in order and len(order) == len(set(order))


def test_cpio_archive_reads_back_with_gnu_cpio(tmp_path):
    archive = cpio_newc([CpioEntry("bin"), CpioEntry("bin/tool", b"#!/bin/sh\necho hi\n"), CpioEntry("bin/sh", link="tool")])
    listing = subprocess.run(["cpio", "-itv"], input=gzip.decompress(gzip.compress(archive)), capture_output=True, timeout=30, check=True)
    lines = listing.stdout.decode().splitlines()
    assert [line.split()[-1] if "->" not in line else line.split()[-3] for line in lines] == ["bin", "bin/tool", "bin/sh"]
    assert lines[1].startswith("-rwxr-xr-x") and lines[2].startswith("l") and lines[2].endswith("-> tool")


def test_bootable_ova_describes_vmware_hardware(tmp_path):
    ova = make_bootable_ova(tmp_path / "bootable-sample.ova", efi=True)
    with tarfile.open(ova) as archive:
        names = archive.getnames()
        archive.extractall(tmp_path / "x", filter="data")
    assert names[0] == "bootable-sample.ovf" and names[1].endswith(".vmdk")
    ovf_text = (tmp_path / "x" / names[0]).read_text()
    assert "<rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>" in ovf_text
    assert "<rasd:ResourceSubType>vmxnet3</rasd:ResourceSubType>" in ovf_text
    descriptor = parse_ovf(tmp_path / "x" / names[0])
    assert (descriptor.vm.cpu, descriptor.vm.mem_gb, descriptor.vm.firmware.value) == (2, 1.0, "uefi")
    assert [nic.mac for nic in descriptor.vm.nics] == [SAMPLE_MAC]
    assert descriptor.disks[0].capacity_bytes == 64 * 2**20
    assert not list(tmp_path.glob(".*")), "the OVA's staging files were left behind"
