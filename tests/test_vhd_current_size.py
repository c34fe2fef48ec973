"""A VHD is read at its footer's current size, whatever application wrote it.

qemu's vpc driver takes the size from the footer only for creators it knows (win, qem2, d2v, tap, CTXS) and
otherwise from the CHS geometry, which can be smaller than the disk. Read that way, a source and its truncated
conversion agree with each other, so no comparison would catch the loss: every qemu-img call hyperexport makes
(info, check, compare, convert, the overlay of guest fixes) reads a VHD with force_size_calc=current_size.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from support.azure_vhd import chs, footer
from support.migrate import assert_identical, local_request

from hyperexport import qemu
from hyperexport.migration import run_migration


@pytest.fixture
def odd_vhd(base_raw, tmp_path) -> tuple[Path, int]:
    """A fixed VHD whose footer names a creator qemu does not know: its CHS geometry is short of its size."""
    size = base_raw.stat().st_size
    vhd = tmp_path / "src" / "odd.vhd"
    vhd.parent.mkdir()
    vhd.write_bytes(base_raw.read_bytes() + footer(size, creator=b"xyz "))
    cylinders, heads, sectors = chs(size)
    probed = json.loads(subprocess.run(["qemu-img", "info", "--output=json", "-f", "vpc", str(vhd)],
                                       capture_output=True, text=True, check=True).stdout)["virtual-size"]  # fmt: skip
    assert probed == cylinders * heads * sectors * 512 < size, "the premise: qemu alone reads it short"
    return vhd, size


@pytest.mark.parametrize("converter", ["qemu-img", "hyper2kvm"])
def test_a_vhd_from_an_unknown_creator_migrates_at_its_full_size(converter, odd_vhd, base_raw, tmp_path):
    vhd, size = odd_vhd
    report = run_migration(local_request(vhd, tmp_path / "out", converter))
    assert report.disks[0].virtual_size_bytes == size
    output = report.conversion.converted_files[0]
    assert qemu.info(output, "qcow2").virtual_size == size
    assert_identical(base_raw, "raw", output)


def test_the_guest_fix_overlay_of_a_vhd_sees_its_full_size(odd_vhd, tmp_path):
    vhd, size = odd_vhd
    overlay = qemu.create_overlay(vhd, "vpc", tmp_path / "overlay.qcow2")
    assert qemu.info(overlay, "qcow2").virtual_size == size
    assert qemu.compare(vhd, "vpc", overlay, "qcow2").identical
