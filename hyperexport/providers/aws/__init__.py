"""The ``aws`` provider: EC2 instances, AMIs and EBS snapshots (see provider.py)."""

from .provider import AwsOptions, AwsProvider

provider = AwsProvider()

__all__ = ["AwsOptions", "AwsProvider", "provider"]
