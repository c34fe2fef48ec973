"""A bootable Linux sample guest, built from the host's Debian packages without root, loop devices or network.

Disk layout (MBR): syslinux's mbr.bin, a FAT16 boot partition (syslinux for BIOS, systemd-boot as
EFI/BOOT/BOOTX64.EFI for UEFI, the host's kernel, a busybox initramfs) and an ext4 root made with ``mkfs.ext4 -d``. The initramfs loads the virtio-blk, AHCI and ext4
modules, finds the root by UUID, mounts it read-only and hands over to the root's ``/sbin/init``, which prints
``SAMPLE_MARKER`` on the serial console and powers off. Partitions are built as files and copied into place.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from .. import procs
from ..errors import InvalidInputError
from .initramfs import CpioEntry, write_initramfs
from .kernel import find_host_kernel, module_load_order
from .models import SAMPLE_MARKER_TEXT

MiB = 2**20
SECTOR = 512
SAMPLE_MARKER = SAMPLE_MARKER_TEXT
BUSYBOX = Path("/bin/busybox")
SYSLINUX_MBR = Path("/usr/lib/syslinux/mbr/mbr.bin")
SYSTEMD_BOOT = Path("/usr/lib/systemd/boot/efi/systemd-bootx64.efi")
_BOOT_START_SECTOR = 2048
_BUILD = procs.Limits(timeout_s=120.0, memory_bytes=2 * 2**30, cpu_s=120)

_INITRAMFS_INIT = """#!/bin/busybox sh
export PATH=/bin
busybox mount -t devtmpfs devtmpfs /dev
busybox mount -t proc proc /proc
busybox mount -t sysfs sysfs /sys
fail() { echo "sample-initramfs: $*" > /dev/console; busybox poweroff -f; }
for module in $(busybox cat /modules.order); do
    busybox insmod "/modules/$module" || echo "sample-initramfs: could not load $module" > /dev/console
done
root=""
for word in $(busybox cat /proc/cmdline); do
    case "$word" in root=UUID=*) root="${word#root=UUID=}" ;; esac
done
[ -n "$root" ] || fail "no root=UUID= on the kernel command line"
tries=0
until device=$(busybox findfs "UUID=$root" 2>/dev/null); do
    tries=$((tries + 1))
    [ "$tries" -le 100 ] || fail "no block device holds the root filesystem UUID=$root"
    busybox sleep 0.1
done
busybox mount -t ext4 -o ro "$device" /newroot || fail "cannot mount $device (UUID=$root) as ext4"
echo "sample-initramfs: root UUID=$root is $device" > /dev/console
busybox umount /proc /sys
busybox mount --move /dev /newroot/dev
exec busybox switch_root /newroot /sbin/init
"""

_ROOT_INIT = f"""#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
echo "{SAMPLE_MARKER}" > /dev/console
/bin/busybox poweroff -f
"""

_SYSLINUX_CFG = """SERIAL 0 115200
DEFAULT sample
PROMPT 0
TIMEOUT 0
LABEL sample
  KERNEL /vmlinuz
  INITRD /initrd.img
  APPEND {cmdline}
"""


_LOADER_CONF = "timeout 0\ndefault sample.conf\nconsole-mode keep\n"
_LOADER_ENTRY = "title hyperexport sample\nlinux /vmlinuz\ninitrd /initrd.img\noptions {cmdline}\n"


def _run(*cmd: str, what: str) -> None:
    done = procs.run_bounded(list(cmd), limits=_BUILD, what=what, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "MTOOLS_SKIP_CHECK": "1"})
    if done.returncode != 0:
        raise InvalidInputError(f"{what} failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")


def kernel_cmdline(root_uuid: str) -> str:
    # panic=-1: a panic reboots at once, which -no-reboot turns into a prompt exit.
    return f"console=ttyS0,115200 root=UUID={root_uuid} panic=-1 loglevel=4"


def _needs(path: Path, package: str) -> Path:
    if not path.is_file():
        raise InvalidInputError(f"{path} is missing; install it (apt-get install {package})")
    return path


def _initramfs(dest: Path) -> Path:
    kernel = find_host_kernel()
    modules = module_load_order(kernel)
    entries = [CpioEntry(d) for d in ("bin", "dev", "proc", "sys", "newroot", "modules")]
    entries.append(CpioEntry("bin/busybox", _needs(BUSYBOX, "busybox-static").read_bytes()))
    entries.append(CpioEntry("bin/sh", link="busybox"))
    entries += [CpioEntry(f"modules/{m.name}", m.read_bytes(), 0o644) for m in modules]
    entries.append(CpioEntry("modules.order", "".join(f"{m.name}\n" for m in modules).encode(), 0o644))
    entries.append(CpioEntry("init", _INITRAMFS_INIT.encode()))
    return write_initramfs(dest, entries)


def _root_tree(root: Path, root_uuid: str, boot_uuid: str) -> None:
    for directory in ("bin", "sbin", "etc", "dev", "proc", "sys", "boot", "tmp"):
        (root / directory).mkdir(parents=True)
    shutil.copy(_needs(BUSYBOX, "busybox-static"), root / "bin/busybox")
    (root / "bin/sh").symlink_to("busybox")
    init = root / "sbin/init"
    init.write_text(_ROOT_INIT)
    init.chmod(0o755)
    (root / "etc/fstab").write_text(f"UUID={root_uuid} / ext4 ro 0 1\nUUID={boot_uuid} /boot vfat ro 0 2\n")
    (root / "etc/hostname").write_text("hyperexport-sample\n")
    (root / "etc/os-release").write_text('NAME="hyperexport sample"\nID=hyperexport-sample\nPRETTY_NAME="hyperexport bootable sample"\n')


def _boot_partition(dest: Path, size_mib: int, files: dict[str, Path], volume_id: str) -> Path:
    _run("mkfs.fat", "-F", "16", "-n", "SAMPLEBOOT", "-i", volume_id, "-h", str(_BOOT_START_SECTOR),
         "-C", str(dest), str(size_mib * 1024), what="mkfs.fat of the sample's boot partition")
    for directory in ("EFI", "EFI/BOOT", "loader", "loader/entries"):
        _run("mmd", "-i", str(dest), f"::{directory}", what=f"mmd {directory}")
    for name, source in files.items():
        _run("mcopy", "-i", str(dest), str(source), f"::{name}", what=f"mcopy {name}")
    _run("syslinux", "--install", str(dest), what="syslinux --install")
    return dest


def _partition_table(disk: Path, boot_sectors: int) -> None:
    layout = (
        "label: dos\n"
        f"start={_BOOT_START_SECTOR}, size={boot_sectors}, type=e, bootable\n"
        f"start={_BOOT_START_SECTOR + boot_sectors}, type=83\n"
    )
    proc = procs.spawn(["sfdisk", "--no-reread", "--no-tell-kernel", "-q", str(disk)], _BUILD,
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    with procs.supervised(proc):
        _, stderr = proc.communicate(layout, timeout=_BUILD.timeout_s)
    if proc.returncode != 0:
        raise InvalidInputError(f"sfdisk failed on {disk} (exit {proc.returncode}): {stderr.strip()[-500:]}")


def _copy_into(disk: Path, part: Path, start_sector: int) -> None:
    with open(disk, "r+b") as out, open(part, "rb") as src:
        out.seek(start_sector * SECTOR)
        shutil.copyfileobj(src, out, MiB)


def make_bootable_guest(path: Path, size_mib: int = 64, boot_mib: int = 24) -> Path:
    """Write a raw bootable disk of ``size_mib`` MiB at ``path``; returns ``path``."""
    if size_mib < boot_mib + 16:
        raise InvalidInputError(f"a bootable sample needs at least {boot_mib + 16} MiB, not {size_mib}")
    path.parent.mkdir(parents=True, exist_ok=True)
    root_uuid = str(uuid.uuid4())
    boot_serial = uuid.uuid4().hex[:8]
    boot_uuid = f"{boot_serial[:4]}-{boot_serial[4:]}".upper()
    boot_sectors = boot_mib * MiB // SECTOR
    root_start = _BOOT_START_SECTOR + boot_sectors
    root_sectors = size_mib * MiB // SECTOR - root_start
    with tempfile.TemporaryDirectory(prefix=".sample-guest-", dir=path.parent) as tmp:
        work = Path(tmp)
        kernel = find_host_kernel()
        cfg = work / "syslinux.cfg"
        cfg.write_text(_SYSLINUX_CFG.format(cmdline=kernel_cmdline(root_uuid)))
        loader_conf, entry = work / "loader.conf", work / "sample.conf"
        loader_conf.write_text(_LOADER_CONF)
        entry.write_text(_LOADER_ENTRY.format(cmdline=kernel_cmdline(root_uuid)))
        files = {
            "vmlinuz": kernel.vmlinuz, "initrd.img": _initramfs(work / "initrd.img"), "syslinux.cfg": cfg,
            # UEFI: the removable-media path OVMF boots, systemd-boot reading a Boot Loader Specification entry.
            "EFI/BOOT/BOOTX64.EFI": _needs(SYSTEMD_BOOT, "systemd-boot-efi"),
            "loader/loader.conf": loader_conf, "loader/entries/sample.conf": entry,
        }
        boot = _boot_partition(work / "boot.fat", boot_mib, files, boot_serial)
        _root_tree(work / "root", root_uuid, boot_uuid)
        root = work / "root.ext4"
        _run("mkfs.ext4", "-q", "-F", "-L", "sample-root", "-U", root_uuid, "-d", str(work / "root"),
             str(root), f"{root_sectors // 2}k", what="mkfs.ext4 of the sample's root")
        disk = work / "disk.raw"
        with open(disk, "wb") as handle:
            handle.truncate(size_mib * MiB)
        _partition_table(disk, boot_sectors)
        with open(disk, "r+b") as out:
            out.write(_needs(SYSLINUX_MBR, "syslinux-common").read_bytes()[:440])
        _copy_into(disk, boot, _BOOT_START_SECTOR)
        _copy_into(disk, root, root_start)
        disk.replace(path)
    return path
