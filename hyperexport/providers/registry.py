"""Provider names mapped to their packages, in one place: adding a provider adds one line here.

A provider shipped apart from hyperexport registers itself instead through the ``hyperexport.providers``
entry point group (``name = "package.module:provider"`` in its own pyproject.toml).
"""

from __future__ import annotations

import functools
import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .contract import Provider

# name -> "package:instance". Importing a package never imports its SDK (that happens on first use).
REGISTRY: dict[str, str] = {
    "local": "hyperexport.providers.local:provider",
    "aws": "hyperexport.providers.aws:provider",
    "vsphere": "hyperexport.providers.vsphere:provider",
    "azure": "hyperexport.providers.azure:provider",
    "gcp": "hyperexport.providers.gcp:provider",
    "hyperv": "hyperexport.providers.hyperv:provider",
}

ENTRY_POINT_GROUP = "hyperexport.providers"

_loaded: dict[str, Provider[Any, Any]] = {}


@functools.cache
def _registered() -> dict[str, str]:
    plugins = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in REGISTRY}
    return {**REGISTRY, **plugins}


def registered_names() -> tuple[str, ...]:
    return tuple(_registered())


def get_provider(name: str) -> Provider[Any, Any]:
    from ..errors import InvalidInputError
    from ..models.provider_name import PROVIDER_NAMES
    from .contract import Provider

    registered = _registered()
    if name not in registered:
        if name in PROVIDER_NAMES:
            raise InvalidInputError(
                f"provider {name!r} is not available in this release of hyperexport; available: {', '.join(registered)}",
                field="provider",
            )
        raise InvalidInputError(f"unknown provider {name!r}; accepted: {', '.join(registered)}", field="provider")
    if name not in _loaded:
        module, _, attribute = registered[name].partition(":")
        provider = getattr(importlib.import_module(module), attribute)
        if not isinstance(provider, Provider) or provider.name != name:
            raise TypeError(f"registry entry {name!r} ({registered[name]}) is not the Provider named {name!r}")
        _loaded[name] = provider
    return _loaded[name]


def providers() -> list[Provider[Any, Any]]:
    """Every registered provider, in registry order."""
    return [get_provider(name) for name in _registered()]

