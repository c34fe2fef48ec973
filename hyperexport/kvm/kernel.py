"""The host's installed Debian kernel and the modules a sample guest needs, dependencies first."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidInputError

# Block drivers for virtio-blk and SATA (AHCI), and ext4 with the crc32c its checksums need (the kernel would
# ask modprobe for it, and the initramfs has none).
BOOT_MODULES = ("virtio_pci", "virtio_blk", "ahci", "sd_mod", "crc32c_generic", "ext4")


@dataclass(frozen=True)
class HostKernel:
    version: str
    vmlinuz: Path
    modules_dir: Path


def _version_key(version: str) -> list[int]:
    return [int(part) for part in re.findall(r"\d+", version)]


def find_host_kernel(boot: Path = Path("/boot"), modules_root: Path = Path("/lib/modules")) -> HostKernel:
    """The newest ``/boot/vmlinuz-*`` whose modules are installed."""
    candidates = []
    for vmlinuz in boot.glob("vmlinuz-*"):
        version = vmlinuz.name.removeprefix("vmlinuz-")
        if (modules_root / version / "modules.dep").is_file():
            candidates.append(HostKernel(version, vmlinuz, modules_root / version))
    if not candidates:
        raise InvalidInputError(
            f"no kernel with its modules in {boot} and {modules_root}; install one (apt-get install linux-image-amd64)"
        )
    return max(candidates, key=lambda kernel: _version_key(kernel.version))


def _module_name(path: str) -> str:
    return Path(path).name.split(".ko")[0].replace("-", "_")


def module_load_order(kernel: HostKernel, wanted: tuple[str, ...] = BOOT_MODULES) -> list[Path]:
    """Module files for ``wanted`` and everything they depend on, each after its dependencies.

    A wanted module that is built into the kernel (modules.builtin) needs no file.
    """
    deps: dict[str, tuple[str, list[str]]] = {}
    for line in (kernel.modules_dir / "modules.dep").read_text().splitlines():
        target, _, needs = line.partition(":")
        deps[_module_name(target)] = (target, needs.split())
    builtin_file = kernel.modules_dir / "modules.builtin"
    builtin = {_module_name(line) for line in builtin_file.read_text().split()} if builtin_file.is_file() else set()
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order or name in builtin:
            return
        if name not in deps:
            raise InvalidInputError(f"kernel {kernel.version} has no module {name}; install the full linux-image package")
        needs = deps[name][1]
        # modules.dep lists every transitive dependency; loading them deepest-first is the reverse of that list.
        for dependency in reversed(needs):
            visit(_module_name(dependency))
        order.append(name)

    for name in wanted:
        visit(name)
    return [kernel.modules_dir / deps[name][0] for name in order]
