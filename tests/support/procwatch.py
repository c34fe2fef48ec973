"""Which converter processes run below this test process (children, grandchildren, orphans it reaps)."""

from __future__ import annotations

import os
from pathlib import Path

NAMES = ("qemu-img", "qemu-system", "hyper2kvm", "guestfsd", "passt")


def descendants(names: tuple[str, ...] = NAMES) -> dict[int, str]:
    children: dict[int, list[int]] = {}
    cmdlines: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if state not in ("Z", "X"):
            children.setdefault(int(ppid), []).append(int(entry.name))
            cmdlines[int(entry.name)] = cmdline or stat.split("(", 1)[1].rsplit(")", 1)[0]
    found, stack = {}, list(children.get(os.getpid(), []))
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        if any(name in cmdlines.get(pid, "") for name in names):
            found[pid] = cmdlines[pid]
    return found


def daemons_serving(image: Path) -> list[int]:
    """Every qemu-storage-daemon on the machine that serves ``image``, whoever its parent is now."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                cmdline = Path(entry.path, "cmdline").read_bytes()
            except OSError:
                continue
            if b"qemu-storage-daemon" in cmdline and str(image).encode() in cmdline:
                found.append(int(entry.name))
    return found


def die_with_parent() -> None:
    """``preexec_fn`` of a test server: it gets SIGTERM when the test process dies without its teardown
    (killed by a timeout), so that no emulator outlives the session."""
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
