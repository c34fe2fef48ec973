"""The ``vsphere`` provider: VMs of vCenter Server or ESXi (see provider.py)."""

from .credentials import VsphereLogin
from .options import VsphereOptions
from .provider import VsphereProvider

provider = VsphereProvider()

__all__ = ["VsphereLogin", "VsphereOptions", "VsphereProvider", "provider"]
