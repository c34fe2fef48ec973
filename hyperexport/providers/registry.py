"""Provider names mapped to their modules, in one place."""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import InvalidInputError
from ..models.provider_name import PROVIDER_NAMES
from ..validate_input import build
from .base import ProviderModule

# Providers whose module ships in this release. The others are known names
# (their tags and limits exist) whose export code has not landed yet.
AVAILABLE = {"local": "hyperexport.providers.local", "aws": "hyperexport.providers.aws"}


def get_provider(name: str) -> ProviderModule:
    if name not in PROVIDER_NAMES:
        raise InvalidInputError(f"unknown provider {name!r}; accepted: {', '.join(PROVIDER_NAMES)}")
    if name not in AVAILABLE:
        raise InvalidInputError(
            f"provider {name!r} is not available in this release of hyperexport; available: {', '.join(AVAILABLE)}"
        )
    return importlib.import_module(AVAILABLE[name])  # type: ignore[return-value]


def parse_options(name: str, options: dict[str, Any]) -> Any:
    return build(get_provider(name).Options, options, within="source")
