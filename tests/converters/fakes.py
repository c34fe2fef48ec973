"""Stand-ins for the programs a conversion starts, for what the real ones cannot be made to do on cue:
hang like a KVM guest stuck at "Booting from ROM", fail with an error on stderr, run until stopped."""

from __future__ import annotations

import sys
from pathlib import Path

REAL_QEMU = "/usr/bin/qemu-system-x86_64"


def _script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(0o755)
    return path


def hanging_kvm_qemu(directory: Path) -> Path:
    """A qemu-system-x86_64 whose KVM guests never boot (alive and silent, like a guest stuck at
    "Booting from ROM"); libguestfs's capability queries and TCG guests run the real qemu."""
    return _script(directory / "qemu-system-x86_64", f"""
import os, sys, time
args = sys.argv[1:]
if "-kernel" in args and ("-enable-kvm" in args or any("accel=kvm" in a for a in args)):
    while True:
        time.sleep(3600)
os.execv({REAL_QEMU!r}, [{REAL_QEMU!r}, *args])
""")


def failing_converter(directory: Path, calls: Path) -> Path:
    """A converter that prints hyper2kvm-style banner lines, then its error in red on stderr, and exits 1.
    Every conversion it is asked for appends a line to ``calls``."""
    return _script(directory / "hyper2kvm", f"""
import sys
if "--manifest" in sys.argv:
    with open({str(calls)!r}, "a") as log:
        log.write(" ".join(sys.argv[1:]) + "\\n")
print("22:13:17 \\u2705 INFO     [proc=MainProcess] " + "=" * 80, flush=True)
print("22:13:17 \\u2705 INFO     [proc=MainProcess] \\U0001f680 Artifact Manifest v1 Conversion Pipeline", flush=True)
print("\\x1b[31m22:13:18 \\u274c ERROR    [proc=MainProcess] disk-0: no partition table found, cannot fix this guest\\x1b[0m",
      file=sys.stderr, flush=True)
sys.exit(1)
""")


def endless_converter(directory: Path) -> Path:
    """A converter that starts a child in a process group of its own (as libguestfs starts qemu-system),
    says so, and runs until it is stopped."""
    return _script(directory / "hyper2kvm", """
import os, subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)", "qemu-system-x86_64 (appliance stand-in)"],
                 preexec_fn=os.setpgrp)
print("12:00:00 INFO     [proc=MainProcess] Stage: FIX (appliance started)", flush=True)
while True:
    time.sleep(3600)
""")


def recording_converter(directory: Path, record: Path) -> Path:
    """A converter that loads the manifest it is handed with hyper2kvm's own loader, writes to ``record``
    what that loader reads (the pipeline stages and the output format), and exits 0 without touching a disk."""
    return _script(directory / "hyper2kvm", f"""
import json, sys
from hyper2kvm.manifest.loader import ManifestLoader
loader = ManifestLoader()
loader.load(sys.argv[sys.argv.index("--manifest") + 1])
stages = {{name: loader.get_stage_config(name) for name in ("inspect", "fix", "convert", "validate")}}
with open({str(record)!r}, "w") as out:
    json.dump({{"stages": stages, "output_format": loader.get_output_format()}}, out)
""")
