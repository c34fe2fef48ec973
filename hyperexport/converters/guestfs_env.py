"""Environment for hyper2kvm's guest fixes through libguestfs.

hyper2kvm imports the ``guestfs`` Python module, which Debian ships only for
its system Python (python3-guestfs). When our interpreter cannot import it, we
point the converter's PYTHONPATH at a directory that links to Debian's copy.
Where /dev/kvm cannot run a VM, the libguestfs appliance must use TCG; where it
opens but a guest fails or hangs, ``accel`` finds out with one bounded launch.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path

from ..errors import ConverterNotFoundError

_KVM_GET_API_VERSION = 0xAE00
_KVM_CREATE_VM = 0xAE01
_DEBIAN_DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")


def kvm_usable() -> bool:
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if fcntl.ioctl(fd, _KVM_GET_API_VERSION) != 12:
            return False
        vm_fd = fcntl.ioctl(fd, _KVM_CREATE_VM, 0)
        os.close(vm_fd)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _guestfs_shim(work_dir: Path) -> Path | None:
    if importlib.util.find_spec("guestfs") is not None:
        return None
    module = _DEBIAN_DIST_PACKAGES / "guestfs.py"
    extensions = sorted(_DEBIAN_DIST_PACKAGES.glob("libguestfsmod*.so"))
    if not module.exists() or not extensions:
        raise ConverterNotFoundError(
            "guest fixes need libguestfs and its Python module; install them with "
            "'apt-get install libguestfs-tools python3-guestfs linux-image-amd64', or run without --fix"
        )
    shim = work_dir / "guestfs-python"
    shim.mkdir(parents=True, exist_ok=True)
    for target in (module, *extensions):
        link = shim / target.name
        if not link.exists():
            link.symlink_to(target)
    return shim


LAUNCH_FAILURE = "guestfs_launch failed"


def guestfs_environment(work_dir: Path, *, force_tcg: bool, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """What to add to ``base`` (the converter's environment, default ``os.environ``) for libguestfs."""
    source: Mapping[str, str] = os.environ if base is None else base
    env = {"LIBGUESTFS_BACKEND": "direct", "HYPER2KVM_GUESTFS_BACKEND": "libguestfs"}
    if force_tcg:
        settings = [s for s in source.get("LIBGUESTFS_BACKEND_SETTINGS", "").split(":") if s and s != "force_tcg"]
        env["LIBGUESTFS_BACKEND_SETTINGS"] = ":".join([*settings, "force_tcg"])
    shim = _guestfs_shim(work_dir)
    if shim is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(shim), source.get("PYTHONPATH")]))
    return env
