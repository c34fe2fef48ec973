"""The qemu-system-x86_64 command line that boots a DomainPlan's devices for a boot check.

Each disk is a read-only node (the converted file, explicit format) under a qcow2 overlay in the check's
own directory, which takes every write: the output is never opened for writing. No NIC (a migrated guest
gets no network during the check), no graphics, the serial console to a file, a seccomp sandbox.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Literal

from ..errors import ConverterNotFoundError
from .models import DomainPlan

QEMU_SYSTEM = "qemu-system-x86_64"
QEMU_SYSTEM_PATH = "/usr/bin/qemu-system-x86_64"
Accel = Literal["kvm", "tcg"]


def qemu_system_binary() -> str:
    found = shutil.which(QEMU_SYSTEM) or (QEMU_SYSTEM_PATH if os.access(QEMU_SYSTEM_PATH, os.X_OK) else None)
    if found is None:
        raise ConverterNotFoundError(f"{QEMU_SYSTEM} is not installed; install it with 'apt-get install qemu-system-x86'")
    return found


def _opt(value: object) -> str:
    """A value inside qemu's comma-separated option syntax (a comma is written twice)."""
    return str(value).replace(",", ",,")


def _disk_nodes(index: int, path: Path, fmt: str, overlay: Path) -> list[str]:
    base = {"driver": fmt, "node-name": f"base{index}", "read-only": True,
            "file": {"driver": "file", "filename": str(path), "read-only": True}}
    top = {"driver": "qcow2", "node-name": f"disk{index}", "backing": f"base{index}",
           "file": {"driver": "file", "filename": str(overlay)}}
    return ["-blockdev", json.dumps(base), "-blockdev", json.dumps(top)]


def boot_command(
    plan: DomainPlan, *, accel: Accel, overlays: list[Path], console: Path, memory_mib: int, uefi_vars: Path | None
) -> list[str]:
    """``overlays[i]`` is an empty qcow2 of ``plan.disks[i]``'s virtual size; ``uefi_vars`` a writable copy."""
    secure = plan.firmware.secure_boot
    machine = f"{plan.machine},graphics=off" + (",smm=on" if secure else "")
    cmd = [
        qemu_system_binary(), "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
        "-machine", machine, "-accel", "kvm" if accel == "kvm" else "tcg,tb-size=256",
        "-m", str(memory_mib), "-smp", str(max(1, min(plan.vcpus, os.cpu_count() or 1))),
        "-chardev", f"file,id=console0,path={_opt(console)}", "-serial", "chardev:console0",
    ]
    if accel == "kvm":
        cmd += ["-cpu", "host"]
    if plan.firmware.kind == "uefi":
        cmd += ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={_opt(plan.firmware.code)}",
                "-drive", f"if=pflash,format=raw,unit=1,file={_opt(uefi_vars)}"]
        if secure:
            cmd += ["-global", "driver=cfi.pflash01,property=secure,value=on"]
    if any(disk.bus == "sata" for disk in plan.disks):
        cmd += ["-device", "ahci,id=sata0"]
    for i, (disk, overlay) in enumerate(zip(plan.disks, overlays)):
        cmd += _disk_nodes(i, disk.path, disk.format, overlay)
        if disk.bus == "virtio":
            cmd += ["-device", f"virtio-blk-pci,drive=disk{i},bootindex={disk.boot_order}"]
        else:
            cmd += ["-device", f"ide-hd,bus=sata0.{i},drive=disk{i},bootindex={disk.boot_order}"]
    return cmd
