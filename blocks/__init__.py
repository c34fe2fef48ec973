"""Prefect blocks that hold provider credentials, and their hand-off to the engine.

The engine never sees a block: ``credentials_for`` loads the named block and
returns what the provider module takes as ``credentials`` (a boto3 Session
for aws, ...). Tasks take the block's *name* as input, so Prefect's cache
keys hash a string, never a client.
"""

from __future__ import annotations

from typing import Any

from hyperexport.errors import InvalidInputError


def _aws_session(block_name: str) -> Any:
    """prefect-aws's AwsCredentials block ``block_name`` as the boto3 Session the aws provider takes."""
    from prefect_aws import AwsCredentials

    return AwsCredentials.load(block_name).get_boto3_session()


# provider name -> function(block_name) -> engine credentials object
_LOADERS: dict[str, Any] = {"aws": _aws_session}


def credentials_for(provider: str, block_name: str | None) -> Any | None:
    """The engine credentials for ``provider`` from block ``block_name``; None uses the SDK's default chain."""
    if block_name is None:
        return None
    loader = _LOADERS.get(provider)
    if loader is None:
        raise InvalidInputError(f"provider {provider!r} takes no credentials block (got {block_name!r})")
    return loader(block_name)
