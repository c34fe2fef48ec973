"""The ``aws`` provider: EC2 instances, AMIs and EBS snapshots (see provider.py)."""

from .credentials import AwsLogin
from .provider import AwsOptions, AwsProvider

provider = AwsProvider()

__all__ = ["AwsLogin", "AwsOptions", "AwsProvider", "provider"]
