"""A toy provider, written as a new provider would be: its own package, nothing edited in hyperexport.

It migrates the VMs of tests/support/toy_cloud.py: an export is created through the cloud's API (recorded in
the session's ledger), its disks are read over http(s) with the cloud's credentials, and the export is
removed afterwards. It registers itself through the ``hyperexport.providers`` entry point
(toy_plugin/hyperexport_toy-0.1.dist-info) and its block through ``hyperexport.blocks``.
"""

from .credentials import ToyLogin
from .options import ToyOptions
from .provider import ToyProvider

provider = ToyProvider()

__all__ = ["ToyLogin", "ToyOptions", "ToyProvider", "provider"]
