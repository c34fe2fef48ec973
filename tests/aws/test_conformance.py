"""The aws provider against the conformance suite, on the moto server."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from support.conformance import Harness, ProviderConformance
from support.moto_aws import REGION

from hyperexport.models import ExportOptions
from hyperexport.providers.registry import get_provider


@contextmanager
def _fault(aws, service: str, action: str, code: str):
    fault = aws.fail(service, action, code)
    try:
        yield fault
    finally:
        if fault in aws.faults:
            aws.faults.remove(fault)


class TestAwsConformance(ProviderConformance):
    provider_name = "aws"

    @pytest.fixture
    def harness(self, aws, light01) -> Harness:
        def at_source() -> set[tuple[str, str]]:
            tagged = aws.tagged()
            return {("snapshot", s) for s in tagged["snapshots"]} | {("image", i) for i in tagged["images"]}

        return Harness(
            provider=get_provider("aws"),
            good_source={"instance": light01.instance_id, "region": REGION, "poll_seconds": 0.05, "api_max_attempts": 3},
            bad_sources=[
                ({"instance": "i-0123456789abcdef0", "region": "mars-1"}, "source.region"),
                ({"region": REGION}, "source.instance"),
                ({"ami": "image-1", "region": REGION}, "source.ami"),
                ({"instance": "i-0123456789abcdef0", "region": REGION, "export_method": "export-image"}, "source.bucket"),
                ({"snapshot": "snap-0123456789abcdef0", "region": REGION, "stop_instance": True}, "source.stop_instance"),
            ],
            export_options=lambda path: ExportOptions(output_dir=path / "out"),
            resources_at_source=at_source,
            # The snapshot set exists when its first DescribeSnapshots is refused: the export must remove it.
            failing_export=lambda: _fault(aws, "ec2", "DescribeSnapshots", "UnauthorizedOperation"),
            sdk_modules=("boto3", "botocore"),
        )
