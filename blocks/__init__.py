"""Prefect blocks that hold provider credentials, and their hand-off to the engine.

The engine never sees a block: ``credentials_for`` loads the named block and
returns what the provider module takes as ``credentials``:

    provider  block type(s)                                         engine credentials (hyperexport/providers/<name>/credentials.py)
    aws       hyperexport-aws-credentials, aws-credentials (prefect-aws)  boto3.Session
    azure     hyperexport-azure-service-principal                   AzureLogin (credential(), endpoints of its cloud)
    gcp       hyperexport-gcp-service-account                       GcpLogin (credentials, project, endpoints)
    vsphere   hyperexport-vsphere-credentials                       VsphereLogin (connect())
    hyperv    hyperexport-hyper-v-credentials                       HypervLogin (WinRM and SMB logins)
    local     none

Tasks take the block's *name* as input, so Prefect's cache keys hash a
string, never a client. Secrets are SecretStr fields (masked by the API and
the UI); an SDK error raised while a block is in use is re-raised with every
secret value of the block scrubbed from its text.

Register the block types with the server: ``python -m blocks`` (or the
bootstrap, ``python -m deployments.bootstrap``).
"""

from __future__ import annotations

import functools
import importlib
import re
from importlib.metadata import entry_points
from typing import Any

from hyperexport.errors import (
    AccessDeniedError,
    HyperExportError,
    InvalidInputError,
    TransferError,
)

from ._secrets import MASK, scrubbed, secret_values

# provider -> the block classes it accepts, preferred first ("module:Class", imported on demand:
# prefect-aws costs a second to import and is an optional extra).
PROVIDER_BLOCKS: dict[str, tuple[str, ...]] = {
    "aws": ("blocks.aws:AwsMigrationCredentials", "prefect_aws:AwsCredentials"),
    "azure": ("blocks.azure:AzureServicePrincipal",),
    "gcp": ("blocks.gcp:GcpServiceAccount",),
    "vsphere": ("blocks.vsphere:VsphereCredentials",),
    "hyperv": ("blocks.hyperv:HypervCredentials",),
}
# A provider shipped apart from hyperexport names its block through this entry point group.
BLOCK_ENTRY_POINTS = "hyperexport.blocks"
# Not credentials, but a block too: a nightly migration plan that the UI shows as a form.
OTHER_BLOCKS: tuple[str, ...] = ("blocks.plan:MigrationPlanBlock",)

_BLOCK_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")

__all__ = [
    "MASK", "OTHER_BLOCKS", "PROVIDER_BLOCKS", "block_class", "provider_blocks", "check_credentials_block", "credentials_for",
    "register_block_types", "scrubbed", "secret_values",
]


def block_class(path: str) -> type:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@functools.cache
def provider_blocks() -> dict[str, tuple[str, ...]]:
    """PROVIDER_BLOCKS and the blocks of plugin providers (``hyperexport.blocks`` entry points)."""
    found = dict(PROVIDER_BLOCKS)
    for entry in entry_points(group=BLOCK_ENTRY_POINTS):
        found.setdefault(entry.name, (entry.value,))
    return found


def _accepted(provider: str) -> list[type]:
    blocks = provider_blocks()
    if provider not in blocks:
        return []
    classes = []
    for path in blocks[provider]:
        try:
            classes.append(block_class(path))
        except ImportError as error:
            missing = error.name or path
            if path == blocks[provider][0]:
                raise InvalidInputError(
                    f"the {provider} credentials block needs {missing}, which is not installed; "
                    f"pip install 'hyperexport[{provider}]' on this worker"
                ) from None
    return classes


def _existing_names(client: Any, slug: str) -> list[str]:
    try:
        return sorted(d.name for d in client.read_block_documents_by_type(slug, include_secrets=False) if d.name)
    except Exception:  # noqa: BLE001 - an unregistered type simply has no blocks
        return []


def check_credentials_block(provider: str, block_name: str | None) -> type | None:
    """Refuse, before any work starts, a block name that cannot be used for ``provider``; returns the block's class."""
    if block_name is None:
        return None
    if provider not in provider_blocks():
        raise InvalidInputError(f"provider {provider!r} takes no credentials block (got {block_name!r}); leave credentials_block empty")
    if not _BLOCK_NAME.match(block_name):
        raise InvalidInputError(
            f"{block_name!r} is not a Prefect block name (lowercase letters, digits and dashes); "
            "give the name of the block, not its slug or its contents"
        )
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    classes = _accepted(provider)
    with get_client(sync_client=True) as client:
        for cls in classes:
            try:
                client.read_block_document_by_name(block_name, cls.get_block_type_slug(), include_secrets=False)
                return cls
            except ObjectNotFound:
                continue
        slugs = [cls.get_block_type_slug() for cls in classes]
        existing = sorted({name for slug in slugs for name in _existing_names(client, slug)})
    hint = f"existing {provider} credentials blocks: {', '.join(existing)}" if existing else f"there are no {provider} credentials blocks yet"
    raise InvalidInputError(
        f"credentials block {block_name!r} does not exist for provider {provider} (block types: {', '.join(slugs)}); "
        f"create it in the Prefect UI (Blocks → +, '{classes[0].get_block_type_name()}') or fix the name; {hint}"
    )


def _engine_credentials(block: Any) -> Any:
    if hasattr(block, "engine_credentials"):
        return block.engine_credentials()
    return block.get_boto3_session()  # prefect-aws's AwsCredentials


def credentials_for(provider: str, block_name: str | None) -> Any | None:
    """The engine credentials for ``provider`` from block ``block_name``; None uses the SDK's default chain."""
    if block_name is None:
        return None
    if provider not in provider_blocks():
        raise InvalidInputError(f"provider {provider!r} takes no credentials block (got {block_name!r})")
    cls = check_credentials_block(provider, block_name)
    block = cls.load(block_name)
    try:
        return _engine_credentials(block)
    except HyperExportError:
        raise
    except Exception as error:  # noqa: BLE001 - SDK errors are translated here, secrets scrubbed
        reason = scrubbed(f"{type(error).__name__}: {error}", block)
        where = f"credentials block {block_name!r} ({cls.get_block_type_slug()})"
        if _unreachable(error):
            raise TransferError(f"{where} could not reach its identity service: {reason}; check the network") from None
        raise AccessDeniedError(f"{where} could not be used: {reason}; check its values in the Prefect UI") from None


def _unreachable(error: Exception) -> bool:
    """A network failure (retrying may help), as opposed to credentials that were refused or malformed."""
    name = type(error).__name__
    return isinstance(error, OSError) or any(word in name for word in ("Connection", "Connect", "Timeout", "Unavailable"))


def register_block_types() -> tuple[list[str], list[str]]:
    """Register every hyperexport block type with the server; returns (registered slugs, skipped with reason)."""
    registered, skipped = [], []
    for path in [p for paths in provider_blocks().values() for p in paths] + list(OTHER_BLOCKS):
        try:
            cls = block_class(path)
        except ImportError as error:
            skipped.append(f"{path} ({error.name or error} is not installed)")
            continue
        cls.register_type_and_schema()
        registered.append(cls.get_block_type_slug())
    return registered, skipped
