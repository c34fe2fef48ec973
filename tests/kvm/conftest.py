"""The bootable sample, built once per session (raw, and converted to qcow2 with qemu-img)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hyperexport.kvm.sample_guest import make_bootable_guest

from .helpers import qemu_img_convert


@pytest.fixture(scope="session")
def bootable_raw(tmp_path_factory) -> Path:
    start = time.monotonic()
    path = make_bootable_guest(tmp_path_factory.mktemp("bootable") / "sample.raw", 64)
    print(f"\nbootable sample (64 MiB raw) built in {time.monotonic() - start:.1f}s")
    return path


@pytest.fixture(scope="session")
def bootable_qcow2(bootable_raw, tmp_path_factory) -> Path:
    return qemu_img_convert(bootable_raw, tmp_path_factory.mktemp("converted") / "disk-0.qcow2")
