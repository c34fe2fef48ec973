"""The gcp provider against the conformance suite, on the GCS emulator and the fake Compute Engine."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from support.conformance import Harness, ProviderConformance
from support.gcp_compute import PROJECT, ZONE
from support.gcp_storage import BUCKET

from hyperexport.models import ExportOptions
from hyperexport.providers.registry import get_provider

BAD_SOURCES = [
    ({"zone": ZONE, "bucket": BUCKET}, "source.instance"),
    ({"instance": "web01", "disk": "web01", "zone": ZONE, "bucket": BUCKET}, "source.instance"),
    ({"instance": "Web_01", "zone": ZONE, "bucket": BUCKET}, "source.instance"),
    ({"instance": "web01", "zone": "mars-1", "bucket": BUCKET}, "source.zone"),
    ({"instance": "web01", "zone": ZONE}, "source.bucket"),
    ({"instance": "web01", "zone": ZONE, "bucket": BUCKET, "project": "My Project"}, "source.project"),
    ({"instance": "web01", "zone": ZONE, "bucket": BUCKET, "prefix": "../up"}, "source.prefix"),
    ({"instance": "web01", "zone": ZONE, "bucket": BUCKET, "prefix": "exports/../"}, "source.prefix"),
    ({"instance": "web01", "zone": ZONE, "bucket": BUCKET, "worker_image": "debian"}, "source.worker_image"),
    ({"snapshot": "nightly", "zone": ZONE, "bucket": BUCKET, "guest_flush": True}, "source.guest_flush"),
]


@contextmanager
def _failing_script(gce):
    gce.faults.script_fails = True
    try:
        yield
    finally:
        gce.faults.script_fails = False


class TestGcpConformance(ProviderConformance):
    provider_name = "gcp"

    @pytest.fixture
    def harness(self, gce, web01, login) -> Harness:
        def at_source() -> set[tuple[str, str]]:
            names = [b.name for b in gce.gcs.client(PROJECT).list_blobs(BUCKET, prefix="hyperexport/")]
            prefixes = {("gcs-prefix", f"{BUCKET}/{'/'.join(n.split('/')[:2])}/") for n in names}
            return gce.labelled() | prefixes

        return Harness(
            provider=get_provider("gcp"),
            good_source={"instance": "web01", "zone": ZONE, "project": PROJECT, "bucket": BUCKET, "poll_seconds": 0.01},
            bad_sources=BAD_SOURCES,
            export_options=lambda path: ExportOptions(output_dir=path / "out"),
            credentials=login,
            resources_at_source=at_source,
            # The snapshots, the temporary disks and the worker exist when the worker's script fails.
            failing_export=lambda: _failing_script(gce),
            sdk_modules=("google",),
        )
