"""The ``hyperv`` provider: VMs on a Hyper-V host over WinRM and SMB (see provider.py)."""

from .credentials import HypervLogin
from .options import HypervOptions
from .provider import HypervProvider

provider = HypervProvider()

__all__ = ["HypervLogin", "HypervOptions", "HypervProvider", "provider"]
