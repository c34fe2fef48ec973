"""Provider names mapped to their packages, in one place: adding a provider adds one line here."""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import InvalidInputError
from ..models.provider_name import PROVIDER_NAMES
from .contract import Provider

# name -> "package:instance". Importing a package never imports its SDK (that happens on first use).
REGISTRY: dict[str, str] = {
    "local": "hyperexport.providers.local:provider",
    "aws": "hyperexport.providers.aws:provider",
}

_loaded: dict[str, Provider[Any, Any]] = {}


def get_provider(name: str) -> Provider[Any, Any]:
    if name not in REGISTRY:
        if name in PROVIDER_NAMES:
            raise InvalidInputError(
                f"provider {name!r} is not available in this release of hyperexport; available: {', '.join(REGISTRY)}",
                field="provider",
            )
        raise InvalidInputError(f"unknown provider {name!r}; accepted: {', '.join(REGISTRY)}", field="provider")
    if name not in _loaded:
        module, _, attribute = REGISTRY[name].partition(":")
        provider = getattr(importlib.import_module(module), attribute)
        if not isinstance(provider, Provider) or provider.name != name:
            raise TypeError(f"registry entry {name!r} ({REGISTRY[name]}) is not the Provider named {name!r}")
        _loaded[name] = provider
    return _loaded[name]


def providers() -> list[Provider[Any, Any]]:
    """Every registered provider, in registry order."""
    return [get_provider(name) for name in REGISTRY]


def parse_options(name: str, options: dict[str, Any]) -> Any:
    return get_provider(name).parse(options)
