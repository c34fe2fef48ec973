"""Remove what one run created at Azure, and nothing else.

A run creates snapshots only, each tagged ``hyperexport:run-id=<run id>``. A recorded snapshot is deleted
only when it still carries that tag (an id recorded by mistake cannot delete someone else's snapshot); its
read grant is revoked first (a snapshot with an open grant cannot be deleted, and a grant left open keeps a
SAS URL to the disk valid). Whatever cannot be removed is named in one error.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ...errors import HyperExportError, SourceNotFoundError, TransferError
from ...models import Resource
from ..session import RUN_TAG
from . import snapshots
from .clients import AzureContext
from .options import parse_resource_id

log = logging.getLogger(__name__)


def remove(ctx: AzureContext, run_id: str, resources: Sequence[Resource], *, interval: float = 5.0) -> list[Resource]:
    removed: list[Resource] = []
    failed: list[str] = []
    for resource in resources:
        if resource.kind != "snapshot":
            log.warning("not removing %s: the azure provider creates snapshots only", resource)
            continue
        ref = parse_resource_id(resource.id, "snapshots", "id")
        try:
            try:
                current = snapshots.get(ctx, ref)
            except SourceNotFoundError:
                removed.append(resource)  # already gone
                continue
            if (current.tags or {}).get(RUN_TAG) != run_id:
                log.info("snapshot %s is not tagged %s=%s: left alone", ref.name, RUN_TAG, run_id)
                continue
            snapshots.revoke(ctx, ref, interval=interval)
            snapshots.delete(ctx, ref, interval=interval)
            removed.append(resource)
        except HyperExportError as error:
            log.warning("clean-up of %s failed: %s", resource, error)
            failed.append(f"{ref.name} ({error})")
    if failed:
        raise TransferError(
            f"could not remove {len(failed)} snapshot(s) created by run {run_id}: {'; '.join(failed)}. Run the clean-up "
            f"again, or revoke their access and delete them by hand: they carry the tag {RUN_TAG}={run_id}."
        )
    return removed


def run_resources(ctx: AzureContext, run_id: str) -> list[Resource]:
    """The snapshots tagged with ``run_id``, anywhere in the subscription."""
    return [Resource(kind="snapshot", id=s.id, location=s.location) for s in snapshots.tagged(ctx, run_id)]
