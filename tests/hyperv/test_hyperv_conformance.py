"""The hyperv provider against the conformance suite, on the fake WinRM host and Samba (export method: two runs
of one VM may coexist, where a second checkpoint would stack on the first)."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from support.hyperv_lab import SECRETS
from support.conformance import Harness, ProviderConformance

from hyperexport.models import ExportOptions
from hyperexport.providers.registry import get_provider


class TestHypervConformance(ProviderConformance):
    provider_name = "hyperv"

    @pytest.fixture
    def harness(self, hyperv) -> Harness:
        def at_source() -> set[tuple[str, str]]:
            dirs = {("export-dir", f"{hyperv.share}\\hyperexport\\{name}") for name in hyperv.run_dirs()}
            return dirs | {("checkpoint", name) for _vm, name in hyperv.checkpoints()}

        @contextmanager
        def volume_full():
            hyperv.host.export_space = 2**20  # Export-VM writes 1 MiB, then fails: its directory exists
            try:
                yield
            finally:
                hyperv.host.export_space = None

        share = hyperv.share
        return Harness(
            provider=get_provider("hyperv"),
            good_source={"vm": "web01", "export_method": "export", "share": share},
            bad_sources=[
                ({}, "source.vm"),
                ({"vm": "web01", "vm_id": "0b5c5a0e-1111-2222-3333-444455556666"}, "source.vm"),
                ({"vm_id": "web01"}, "source.vm_id"),
                ({"vm": "web\x00"}, "source.vm"),
                ({"vm": "web01", "export_method": "export"}, "source.share"),
                ({"vm": "web01", "share": "exports"}, "source.share"),
                ({"vm": "web01", "share": "\\\\host\\..\\x"}, "source.share"),
                ({"vm": "web01", "share": share, "share_local_path": "exports"}, "source.share_local_path"),
            ],
            export_options=lambda path: ExportOptions(output_dir=path / "out"),
            credentials=hyperv.login(),
            resources_at_source=at_source,
            failing_export=volume_full,
            sdk_modules=("winrm", "smbclient", "smbprotocol"),
        )

    def test_the_login_never_shows_its_passwords(self, hyperv):
        login = hyperv.login()
        for text in (repr(login), str(login), login.model_dump_json()):
            for secret in SECRETS:
                assert secret not in text
