"""A managed disk is a fixed VHD: its size comes from the footer and Azure, never from qemu's CHS guess."""

from __future__ import annotations

import json
import subprocess

import pytest
from support.azure_arm import RG
from support.azure_vhd import chs, footer
from support.migrate import assert_identical

from hyperexport.errors import IntegrityError
from hyperexport.migration import run_migration


def test_a_vhd_from_a_creator_qemu_does_not_know_converts_to_the_full_size(arm, os_raw, make_request, tmp_path):
    size = os_raw.stat().st_size
    cylinders, heads, sectors = chs(size)
    # The premise: qemu's vpc driver, not knowing creator "xyz ", takes the size from the CHS geometry.
    vhd = tmp_path / "unknown-creator.vhd"
    vhd.write_bytes(os_raw.read_bytes() + footer(size, creator=b"xyz "))
    probed = json.loads(subprocess.run(["qemu-img", "info", "--output=json", "-f", "vpc", str(vhd)], capture_output=True,
                                       text=True, check=True).stdout)["virtual-size"]  # fmt: skip
    assert probed == cylinders * heads * sectors * 512 < size

    disk = arm.add_disk(RG, "odd01-os", os_raw, os_type="Linux", footer=footer(size, creator=b"xyz "))
    arm.add_vm(RG, "odd01", disk, [])
    report = run_migration(make_request(tmp_path / "out", vm="odd01"), credentials=arm.login())

    output = report.conversion.converted_files[0]
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(output)], capture_output=True, text=True,
                                     check=True).stdout)  # fmt: skip
    assert info["virtual-size"] == size
    assert_identical(os_raw, "raw", output)


@pytest.mark.parametrize(("footer_size", "reported", "message"), [
    (-4096, 0, r"its VHD footer \(creator 'win '\) says 16773120 bytes but the blob holds 16777216 bytes"),
    (0, 2**20, r"holds 16777216 bytes before its footer but Azure reports a 17825792-byte disk"),
])  # fmt: skip
def test_a_size_mismatch_fails_the_run(arm, os_raw, make_request, tmp_path, footer_size, reported, message):
    size = os_raw.stat().st_size
    disk = arm.add_disk(RG, "bad01-os", os_raw, os_type="Linux", footer=footer(size + footer_size),
                        reported_size=size + reported)  # fmt: skip
    arm.add_vm(RG, "bad01", disk, [])
    with pytest.raises(IntegrityError, match=message):
        run_migration(make_request(tmp_path / "out", vm="bad01"), credentials=arm.login())
    assert arm.snapshot_ids() == set() and arm.open_grants() == set()
    assert not list((tmp_path / "out").glob("*.qcow2"))
