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
            state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if state not in ("Z", "X"):
            children.setdefault(int(ppid), []).append(int(entry.name))
            cmdlines[int(entry.name)] = cmdline
    found, stack = {}, list(children.get(os.getpid(), []))
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        if any(name in cmdlines.get(pid, "") for name in names):
            found[pid] = cmdlines[pid]
    return found
