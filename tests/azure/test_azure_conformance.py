"""The azure provider against the conformance suite, on Azurite and the local Resource Manager."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from support.azure_arm import RG, SUBSCRIPTION
from support.conformance import Harness, ProviderConformance

from hyperexport.models import ExportOptions
from hyperexport.providers.registry import get_provider

DISK_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RG}/providers/Microsoft.Compute/disks/web01-os"


@contextmanager
def _denied(arm, action: str):
    arm.deny(action)
    try:
        yield
    finally:
        arm.denied.discard(action)


class TestAzureConformance(ProviderConformance):
    provider_name = "azure"

    @pytest.fixture
    def harness(self, arm, web01) -> Harness:
        return Harness(
            provider=get_provider("azure"),
            credentials=arm.login(),
            good_source={"vm": "web01", "resource_group": RG, "poll_seconds": 0.01},
            bad_sources=[
                ({"resource_group": RG}, "source.vm"),
                ({"vm": "web01"}, "source.resource_group"),
                ({"vm": "web 01!", "resource_group": RG}, "source.vm"),
                ({"vm": "web01", "resource_group": "rg/../x"}, "source.resource_group"),
                ({"disk_id": "/subscriptions/x/disks/y"}, "source.disk_id"),
                ({"snapshot_id": DISK_ID}, "source.snapshot_id"),
                ({"disk_id": DISK_ID, "resource_group": RG}, "source.resource_group"),
                ({"vm": "web01", "disk_id": DISK_ID, "resource_group": RG}, "source.vm"),
            ],
            export_options=lambda path: ExportOptions(output_dir=path / "out"),
            resources_at_source=lambda: {("snapshot", s) for s in arm.tagged_snapshots()},
            # The OS disk's snapshot exists when the data disk's is refused: the export must remove it.
            failing_export=lambda: _denied_second_snapshot(arm),
            sdk_modules=("azure",),
        )


@contextmanager
def _denied_second_snapshot(arm):
    """Snapshot writes are refused once the first one is made (a role that allows one resource group only)."""
    original = arm._make_snapshot

    def once(*args, **kwargs):
        arm.deny("Microsoft.Compute/snapshots/write")
        return original(*args, **kwargs)

    arm._make_snapshot = once
    try:
        yield
    finally:
        arm._make_snapshot = original
        arm.denied.discard("Microsoft.Compute/snapshots/write")
