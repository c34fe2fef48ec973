"""Provider names: the ones this installation can run, and the ones an Artifact Manifest may carry."""

from __future__ import annotations

from enum import Enum

from ..providers.registry import registered_names

#: ``source.provider`` values of the Artifact Manifest v1.0 (a manifest may come from another tool).
MANIFEST_PROVIDERS: tuple[str, ...] = ("local", "vsphere", "aws", "azure", "gcp", "hyperv")

# Built from the registry: a new provider (a package and its registry line, or an installed plugin) is a
# valid MigrationRequest.provider, a CLI choice and a UI choice without any edit here.
ProviderName = Enum("ProviderName", {name: name for name in registered_names()}, type=str)  # type: ignore[misc]
ProviderName.__doc__ = "A provider this installation can run; also the Prefect tag of its tasks."

#: Every name hyperexport knows: the registered providers and the manifest's.
PROVIDER_NAMES: tuple[str, ...] = tuple(dict.fromkeys([*MANIFEST_PROVIDERS, *registered_names()]))
