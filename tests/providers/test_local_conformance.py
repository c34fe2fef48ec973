"""The local provider against the conformance suite: it reads files in place and creates nothing."""

from __future__ import annotations

import shutil

import pytest
from support.conformance import Harness, ProviderConformance

from hyperexport.models import ExportOptions
from hyperexport.providers.registry import get_provider


class TestLocalConformance(ProviderConformance):
    provider_name = "local"

    @pytest.fixture
    def harness(self, base_raw, tmp_path) -> Harness:
        disk = tmp_path / "src" / "disk.img"
        disk.parent.mkdir()
        shutil.copy(base_raw, disk)
        return Harness(
            provider=get_provider("local"),
            good_source={"source": str(disk)},
            bad_sources=[
                ({"source": str(tmp_path / "missing.img")}, "source.source"),
                ({"source": "ftp://127.0.0.1/disk.img"}, "source.source"),
                ({"source": str(tmp_path / "src")}, "source.source"),  # a directory without an .ovf
            ],
            export_options=lambda path: ExportOptions(output_dir=path / "out"),
            secret_source=({"source": "http://alice:s3cret-pw@127.0.0.1:9/d/disk.img"}, ["s3cret-pw"]),
        )
