"""Build small, real disk images and VM packages (for the demo, the tests and the benchmarks).

The base image is raw with distinct data patterns separated by holes, so that
a conversion that drops, shifts or pads data fails ``qemu-img compare``.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

MiB = 2**20

# (format as qemu-img names it, -o options, file suffix)
DISK_KINDS: dict[str, tuple[str, str | None, str]] = {
    "raw": ("raw", None, ".raw"),
    "qcow2": ("qcow2", None, ".qcow2"),
    "vmdk-sparse": ("vmdk", "subformat=monolithicSparse", ".vmdk"),
    "vmdk-stream": ("vmdk", "subformat=streamOptimized", ".vmdk"),
    "vmdk-flat": ("vmdk", "subformat=monolithicFlat", ".vmdk"),
    "vhd-dynamic": ("vpc", "subformat=dynamic,force_size=on", ".vhd"),
    "vhd-fixed": ("vpc", "subformat=fixed,force_size=on", ".vhd"),
    "vhdx": ("vhdx", None, ".vhdx"),
    "vdi": ("vdi", None, ".vdi"),
}


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def make_base_raw(path: Path, size_mib: int = 64, *, seed: int = 1) -> Path:
    """A raw disk with a few MiB of patterned data at several offsets and holes between them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    size = size_mib * MiB
    with open(path, "wb") as handle:
        handle.truncate(size)
        offsets = [0, size // 8, size // 3, size // 2 + 4096, size - 2 * MiB]
        for i, offset in enumerate(offsets):
            block = bytes(((seed * 31 + i * 7 + j) % 251) for j in range(4096)) * 64  # 256 KiB
            handle.seek(offset)
            handle.write(block)
        handle.seek(size - 4096)
        handle.write(b"END-OF-DISK" + bytes(4085))
    return path


def make_disk(base_raw: Path, kind: str, dest_dir: Path, name: str | None = None) -> Path:
    """``base_raw`` converted to one of DISK_KINDS; returns the file to hand hyperexport."""
    fmt, opts, suffix = DISK_KINDS[kind]
    dest = dest_dir / f"{name or kind}{suffix}"
    dest_dir.mkdir(parents=True, exist_ok=True)
    cmd = ["qemu-img", "convert", "-q", "-f", "raw", "-O", fmt]
    if opts:
        cmd += ["-o", opts]
    _run(*cmd, str(base_raw), str(dest))
    return dest


def _ovf_xml(
    name: str, disks: list[tuple[str, int, int]], *, cpus: int, mem_mib: int, macs: list[str], efi: bool,
    scsi_controller: str | None = None, nic_model: str | None = None,
) -> str:
    refs = "\n".join(f'    <File ovf:href="{href}" ovf:id="file{i}" ovf:size="{size}"/>' for i, (href, size, _) in enumerate(disks))
    disk_section = "\n".join(
        f'    <Disk ovf:capacity="{cap}" ovf:capacityAllocationUnits="byte" ovf:diskId="vmdisk{i}" ovf:fileRef="file{i}" '
        f'ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>'
        for i, (_, _, cap) in enumerate(disks)
    )
    parent = "\n        <rasd:Parent>3</rasd:Parent>" if scsi_controller else ""
    subtype = f"\n        <rasd:ResourceSubType>{nic_model}</rasd:ResourceSubType>" if nic_model else ""
    disk_items = "\n".join(
        f"""      <Item>
        <rasd:AddressOnParent>{i}</rasd:AddressOnParent>
        <rasd:ElementName>Hard disk {i + 1}</rasd:ElementName>{parent}
        <rasd:HostResource>ovf:/disk/vmdisk{i}</rasd:HostResource>
        <rasd:InstanceID>{10 + i}</rasd:InstanceID>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>"""
        for i in range(len(disks))
    )
    if scsi_controller:
        disk_items = f"""      <Item>
        <rasd:ElementName>SCSI controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>{scsi_controller}</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
""" + disk_items
    nic_items = "\n".join(
        f"""      <Item>
        <rasd:Address>{mac}</rasd:Address>
        <rasd:Connection>VM Network</rasd:Connection>
        <rasd:ElementName>Network adapter {i + 1}</rasd:ElementName>
        <rasd:InstanceID>{20 + i}</rasd:InstanceID>{subtype}
        <rasd:ResourceType>10</rasd:ResourceType>
      </Item>"""
        for i, mac in enumerate(macs)
    )
    firmware = '<vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="efi"/>' if efi else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
  xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
  xmlns:vmw="http://www.vmware.com/schema/ovf">
  <References>
{refs}
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
{disk_section}
  </DiskSection>
  <VirtualSystem ovf:id="{name}">
    <Info>A virtual machine</Info>
    <Name>{name}</Name>
    <OperatingSystemSection ovf:id="101" vmw:osType="otherLinux64Guest">
      <Info>The kind of installed guest operating system</Info>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:ElementName>{cpus} virtual CPU(s)</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>{cpus}</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:ElementName>{mem_mib}MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>{mem_mib}</rasd:VirtualQuantity>
      </Item>
{disk_items}
{nic_items}
      {firmware}
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
"""


def make_ovf(
    base_raws: list[Path], dest_dir: Path, name: str = "sample-vm", *, cpus: int = 2, mem_mib: int = 4096,
    macs: tuple[str, ...] = ("00:50:56:aa:bb:01",), efi: bool = True,
    scsi_controller: str | None = None, nic_model: str | None = None,
) -> Path:
    """An OVF directory: descriptor plus one streamOptimized VMDK per base image."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    disks = []
    for i, raw in enumerate(base_raws):
        vmdk = make_disk(raw, "vmdk-stream", dest_dir, name=f"{name}-disk{i + 1}")
        disks.append((vmdk.name, vmdk.stat().st_size, raw.stat().st_size))
    ovf = dest_dir / f"{name}.ovf"
    ovf.write_text(_ovf_xml(name, disks, cpus=cpus, mem_mib=mem_mib, macs=list(macs), efi=efi,
                            scsi_controller=scsi_controller, nic_model=nic_model))
    return ovf


def make_ova(base_raws: list[Path], dest: Path, name: str = "sample-vm", **ovf_options) -> Path:
    """An OVA: the OVF descriptor first, then its disks, in one tar."""
    staging = dest.parent / f".{dest.stem}-ovf"
    ovf = make_ovf(base_raws, staging, name, **ovf_options)
    with tarfile.open(dest, "w", format=tarfile.USTAR_FORMAT) as archive:
        archive.add(ovf, arcname=ovf.name)
        for disk in sorted(staging.glob("*.vmdk")):
            archive.add(disk, arcname=disk.name)
    for leftover in staging.iterdir():
        leftover.unlink()
    os.rmdir(staging)
    return dest


def make_linux_guest(path: Path, size_mib: int = 128) -> Path:
    """A raw disk with an MBR and one ext4 root partition holding a minimal Debian /etc (for guest-fix tests).

    Built with mkfs.ext4 -d, so it needs neither root nor libguestfs.
    """
    import struct
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        for directory in ("etc", "bin", "usr/bin", "boot", "tmp", "var"):
            (root / directory).mkdir(parents=True)
        (root / "etc/fstab").write_text("/dev/sda1 / ext4 defaults 0 1\n")
        (root / "etc/os-release").write_text(
            'NAME="Debian GNU/Linux"\nID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'
        )
        (root / "etc/debian_version").write_text("12.0\n")
        (root / "etc/hostname").write_text("sample\n")
        start, sectors = 2048, size_mib * 2048 - 2048
        partition = Path(tmp) / "part.ext4"
        _run("mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(root), str(partition), f"{sectors // 2}k")
        with open(path, "wb") as disk:
            disk.truncate(size_mib * MiB)
            disk.seek(446)
            disk.write(struct.pack("<B3sB3sII", 0x80, b"\x00\x02\x00", 0x83, b"\xff\xff\xff", start, sectors))
            disk.seek(510)
            disk.write(b"\x55\xaa")
            disk.seek(start * 512)
            with open(partition, "rb") as part:
                while block := part.read(MiB):
                    disk.write(block)
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m hyperexport.samples {ova,ovf,KIND} DEST``: build a sample VM or disk."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m hyperexport.samples", description=main.__doc__)
    parser.add_argument("kind", choices=["ova", "ovf", *DISK_KINDS])
    parser.add_argument("dest", type=Path, help="file (ova, disk kinds) or directory (ovf) to create")
    parser.add_argument("--size-mib", type=int, default=256)
    args = parser.parse_args(argv)
    work = args.dest.parent if args.kind != "ovf" else args.dest
    base = make_base_raw(work / f".{args.dest.name}.base.raw", args.size_mib)
    try:
        if args.kind == "ova":
            made = make_ova([base], args.dest)
        elif args.kind == "ovf":
            made = make_ovf([base], args.dest)
        else:
            made = make_disk(base, args.kind, args.dest.parent, name=Path(args.dest.name).stem)
    finally:
        base.unlink()
    print(made)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
