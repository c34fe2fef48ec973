"""Hostile disk images, built with real qemu-img and by hand where qemu-img would refuse to make them."""

from __future__ import annotations

import subprocess
from pathlib import Path

FLAT_DESCRIPTOR = """# Disk DescriptorFile
version=1
CID=2fcf6592
parentCID=ffffffff
createType="{create_type}"
{extra}
# Extent description
{extents}

# The Disk Data Base
#DDB

ddb.virtualHWVersion = "4"
ddb.adapterType = "ide"
"""


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True, text=True)


def qcow2_with_backing(dest: Path, backing: str, backing_fmt: str = "raw", size: str = "1M") -> Path:
    # -u: qemu-img must not open the backing file to make the image (a json: string would not open).
    qemu_img("create", "-q", "-f", "qcow2", "-u", "-b", backing, "-F", backing_fmt, str(dest), size)
    return dest


def qcow2_with_data_file(dest: Path, data_file: Path) -> Path:
    qemu_img("create", "-q", "-f", "qcow2", "-o", f"data_file={data_file},data_file_raw=on", str(dest), "1M")
    return dest


def vmdk_descriptor(dest: Path, extents: list[tuple[int, str, str]], create_type: str = "monolithicFlat", extra: str = "") -> Path:
    """A VMDK text descriptor; ``extents``: (sectors, FLAT|SPARSE|ZERO|VMFS..., file name)."""
    lines = [f'RW {sectors} {kind} "{name}"' + (" 0" if kind == "FLAT" else "") for sectors, kind, name in extents]
    dest.write_text(FLAT_DESCRIPTOR.format(create_type=create_type, extra=extra, extents="\n".join(lines)))
    return dest
