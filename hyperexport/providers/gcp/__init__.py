"""The ``gcp`` provider: Compute Engine instances, disks and snapshots (see provider.py)."""

from .credentials import GcpLogin
from .options import GcpOptions
from .provider import GcpProvider

provider = GcpProvider()

__all__ = ["GcpLogin", "GcpOptions", "GcpProvider", "provider"]
