"""The ``azure`` provider: Azure VMs, managed disks and snapshots (see provider.py)."""

from .credentials import AzureLogin
from .options import AzureOptions
from .provider import AzureProvider

provider = AzureProvider()

__all__ = ["AzureLogin", "AzureOptions", "AzureProvider", "provider"]
