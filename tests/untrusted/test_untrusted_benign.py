"""The benign twins of the hostile corpus still migrate, identical to their source, with the source untouched.

One twin runs through the CLI, the others in the engine (sandbox.py: ``via``); the OVF through the CLI."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from sandbox import one_through_cli

from hyperexport import cli
from hyperexport.samples import make_disk, make_ovf


def _subformat(base_raw, dest, subformat):
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "vmdk", "-o", f"subformat={subformat}",
                    str(base_raw), str(dest)], check=True)
    return dest


@pytest.mark.parametrize(("kind", "via"), one_through_cli("qcow2", "vmdk-flat", "twoGbMaxExtentFlat", "twoGbMaxExtentSparse"))
def test_benign_twin_migrates_identically(kind, via, sandbox, base_raw):
    if kind in ("qcow2", "vmdk-flat"):
        disk = make_disk(base_raw, kind, sandbox.src, name="vm")
    else:
        disk = _subformat(base_raw, sandbox.src / "vm.vmdk", kind)
    sandbox.host_file()
    sandbox.take_snapshot()
    sandbox.assert_migrated(sandbox.migrate(disk, via=via))
    compare = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(base_raw), str(sandbox.out / "disk-0.qcow2")])
    assert compare.returncode == 0


def test_local_ovf_with_disks_in_subdirectories(sandbox, base_raw, second_raw):
    pkg = sandbox.src / "pkg"
    ovf = make_ovf([base_raw, second_raw], pkg, "app")
    text = ovf.read_text()
    for i, disk in enumerate(sorted(pkg.glob("*.vmdk"))):
        (pkg / f"d{i}").mkdir()
        shutil.move(disk, pkg / f"d{i}" / "disk.vmdk")
        text = re.sub(f'ovf:href="{re.escape(disk.name)}"', f'ovf:href="d{i}/disk.vmdk"', text)
    ovf.write_text(text)
    sandbox.take_snapshot()
    run = sandbox.migrate(ovf)
    assert run.code == cli.EXIT_OK, run.stderr[-3000:]
    sandbox.assert_untouched()
    for raw, output in ((base_raw, "disk-0.qcow2"), (second_raw, "disk-1.qcow2")):
        assert subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(raw), str(sandbox.out / output)]).returncode == 0
