"""Manifests that describe the bootable sample, hashes, and qemu-img convert through procs."""

from __future__ import annotations

from pathlib import Path

from hyperexport import procs, qemu
from hyperexport.manifest import ArtifactManifest


def sample_manifest(*, fmt: str = "qcow2", firmware: str = "bios", secureboot: bool = False, name: str = "bootable-sample",
                    nics: list[dict] | None = None, disks: int = 1) -> ArtifactManifest:
    return ArtifactManifest.model_validate({
        "source": {"provider": "local", "vm_name": name, "vm_id": name},
        "vm": {"cpu": 2, "mem_gb": 1, "firmware": firmware, "secureboot": secureboot, "os_hint": "linux"},
        "disks": [
            {"id": f"disk-{i}", "source_format": "vmdk", "bytes": 64 * 2**20, "local_path": f"/exports/disk-{i}.vmdk",
             "boot_order_hint": i}
            for i in range(disks)
        ],
        "nics": nics if nics is not None else [{"id": "nic0", "mac": "00:50:56:AA:BB:01", "network": "VM Network"}],
        "output": {"format": fmt},
    })


def qemu_img_convert(source: Path, dest: Path, source_format: str = "raw") -> Path:
    """``qemu-img convert -f SOURCE_FORMAT -O qcow2``, bounded through procs like every qemu-img the engine runs."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    done = procs.run_bounded([qemu.qemu_img_binary(), "convert", "-q", "-f", source_format, "-O", "qcow2", str(source), str(dest)],
                             limits=procs.Limits(timeout_s=120, memory_bytes=2 * 2**30), what="qemu-img convert")
    assert done.returncode == 0, done.stderr
    return dest


def vmdk_to_qcow2(source: Path, dest: Path) -> Path:
    return qemu_img_convert(source, dest, "vmdk")
