"""The ``local`` provider: a disk image, OVA or OVF on this host or behind an http(s) URL."""

from .options import LocalOptions
from .provider import LocalProvider

provider = LocalProvider()

__all__ = ["LocalOptions", "LocalProvider", "provider"]
