"""Remove what one run created at Google Cloud, and nothing else.

Instances, disks and snapshots are found by the run's label (``hyperexport-run-id=<run id>``); an id the
run recorded that does not carry it is left alone. Export objects are those under the run's own prefix
(``…/<run id>/``, which nothing else writes to). The worker goes first, then the disks (an attached disk
cannot be deleted), then the snapshots (a disk made from one does not hold it) and the objects. Whatever
cannot be removed is named in one error.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

from ...errors import HyperExportError, SourceNotFoundError, TransferError
from ...models import Resource
from .clients import RUN_LABEL, GcpContext, run_filter
from .errors import translated
from .gcs import delete_object, list_names
from .pagers import bounded
from .worker import delete

log = logging.getLogger(__name__)

ORDER = ("instance", "disk", "snapshot", "gcs-prefix")


def labelled(ctx: GcpContext, kind: str, run_id: str) -> list[str]:
    """Names of the run's instances, disks or snapshots (found by its label alone)."""
    service, scope = {"instance": ("Instances", {"zone": ctx.zone}), "disk": ("Disks", {"zone": ctx.zone}),
                      "snapshot": ("Snapshots", {})}[kind]  # fmt: skip
    with translated(f"finding the {kind}s of run {run_id}"):
        request = {"project": ctx.project, "filter": run_filter(run_id), **scope}
        return bounded(ctx.compute(service).list(request=request), lambda item: str(item.name), what=f"listing the {kind}s of run {run_id}")


def run_prefix(prefix: str, run_id: str) -> str:
    return f"{prefix}{run_id}/"


def remove(ctx: GcpContext, run_id: str, resources: Sequence[Resource], *, interval: float) -> list[Resource]:
    """Delete ``resources``, created by run ``run_id``; returns those removed (or found already gone)."""
    removed: list[Resource] = []
    failed: list[str] = []

    def guarded(label: str, action: Callable[[], Any], default: Any = None, gone: Any = None) -> Any:
        """``action()``; ``gone`` if what it acts on is already gone, ``default`` if it fails (remembered)."""
        try:
            return action()
        except SourceNotFoundError:
            return default if gone is None else gone
        except HyperExportError as error:
            log.warning("clean-up of %s failed: %s", label, error)
            failed.append(f"{label} ({error})")
            return default

    kinds = sorted({r.kind for r in resources}, key=lambda k: ORDER.index(k) if k in ORDER else len(ORDER))
    for kind in kinds:
        batch = [r for r in resources if r.kind == kind]
        if kind == "gcs-prefix":
            for objects in batch:
                if guarded(f"gs://{objects.id}", functools.partial(_remove_prefix, ctx, run_id, objects.id), default=False, gone=True):
                    removed.append(objects)
            continue
        if kind not in ORDER:
            log.warning("not removing %s: the gcp provider makes no %s", batch, kind)
            continue
        ours = set(guarded(f"the run's {kind}s", functools.partial(labelled, ctx, kind, run_id), default=[]))
        for resource in batch:
            if resource.id not in ours:
                log.info("%s %s is not labelled %s=%s (or is already gone): left alone", kind, resource.id, RUN_LABEL, run_id)
                continue
            if guarded(str(resource), functools.partial(_delete, ctx, resource, interval), default=False, gone=True):
                removed.append(resource)
    if failed:
        raise TransferError(
            f"could not remove {len(failed)} resource(s) created by run {run_id}: {'; '.join(failed)}. Run the clean-up "
            f"again, or delete them by hand: they carry the label {RUN_LABEL}={run_id}."
        )
    return removed


def _delete(ctx: GcpContext, resource: Resource, interval: float) -> bool:
    delete(ctx, resource, interval=interval)
    return True


def _remove_prefix(ctx: GcpContext, run_id: str, spec: str) -> bool:
    bucket, _, prefix = spec.partition("/")
    if not prefix.endswith(f"/{run_id}/") and prefix != f"{run_id}/":
        log.warning("not removing gs://%s/%s: it is not the prefix of run %s", bucket, prefix, run_id)
        return False
    for name in list_names(ctx, bucket, prefix):
        delete_object(ctx, bucket, name)
    return True


def run_resources(ctx: GcpContext, run_id: str, bucket: str | None, prefix: str) -> list[Resource]:
    """What run ``run_id`` left: its labelled instances, disks and snapshots, and its export prefix if it holds objects."""
    found = [Resource(kind=kind, id=name, location=ctx.project if kind == "snapshot" else ctx.zone)
             for kind in ("instance", "disk", "snapshot") for name in labelled(ctx, kind, run_id)]  # fmt: skip
    if bucket and list_names(ctx, bucket, run_prefix(prefix, run_id)):
        found.append(Resource(kind="gcs-prefix", id=f"{bucket}/{run_prefix(prefix, run_id)}", location=bucket))
    return found
