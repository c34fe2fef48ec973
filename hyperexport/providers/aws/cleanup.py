"""Remove what one run created at AWS, and nothing else.

What is removed is found by the run's tag (``hyperexport:run-id=<run id>``):
snapshots and images through DescribeSnapshots/DescribeImages filtered on
it, S3 export objects under the run's own prefix (``…/<run id>/``, which
nothing else writes to). Ids the run recorded but that do not carry its tag
are left alone. Export tasks still running are cancelled first, images are
deregistered before snapshots are deleted (a snapshot behind an AMI cannot
be). Whatever cannot be removed is reported in one error that names it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ...errors import HyperExportError, SourceNotFoundError, TransferError
from ...models import Resource
from ..session import RUN_TAG
from .clients import AwsContext, run_filter
from .errors import translated
from .export_image import cancel

log = logging.getLogger(__name__)


def remove(ctx: AwsContext, run_id: str, resources: Sequence[Resource]) -> list[Resource]:
    """Delete ``resources``, created by run ``run_id``; returns those removed (or found already gone)."""
    removed: list[Resource] = []
    failed: list[str] = []

    def guarded(label: str, action, default=None):
        """``action()``, or ``default`` when it fails (the failure is remembered for the final error)."""
        try:
            return action()
        except SourceNotFoundError:
            return default  # already gone
        except HyperExportError as error:
            log.warning("clean-up of %s failed: %s", label, error)
            failed.append(f"{label} ({error})")
            return default

    def delete(resource: Resource, action) -> None:
        if guarded(str(resource), lambda: action() or True, default=True):
            removed.append(resource)

    by_kind: dict[str, list[Resource]] = {}
    for resource in resources:
        by_kind.setdefault(resource.kind, []).append(resource)
    for task in by_kind.get("export-image-task", []) + by_kind.get("export-instance-task", []):
        # A running task would write its object after the clean-up.
        delete(task, lambda t=task.id: cancel(ctx, t))
    ec2, s3 = ctx.client("ec2"), ctx.client("s3")
    # Only what carries the run's tag is removed: an id recorded by mistake cannot delete someone else's snapshot.
    images = set(guarded("the run's images", lambda: _tagged_images(ctx, run_id), default=[])) if "image" in by_kind else set()
    snapshots = set(guarded("the run's snapshots", lambda: _tagged_snapshots(ctx, run_id), default=[])) if "snapshot" in by_kind else set()
    for image in by_kind.get("image", []):
        if image.id in images:
            delete(image, lambda i=image.id: _call(ctx, f"deregistering image {i}", ec2.deregister_image, ImageId=i))
        else:
            log.info("image %s is not tagged %s=%s (or is already gone): left alone", image.id, RUN_TAG, run_id)
    for snapshot in by_kind.get("snapshot", []):
        if snapshot.id in snapshots:
            delete(snapshot, lambda s=snapshot.id: _call(ctx, f"deleting snapshot {s}", ec2.delete_snapshot, SnapshotId=s))
        else:
            log.info("snapshot %s is not tagged %s=%s (or is already gone): left alone", snapshot.id, RUN_TAG, run_id)
    for objects in by_kind.get("s3-prefix", []):
        bucket, _, prefix = objects.id.partition("/")
        if f"/{run_id}/" not in f"/{prefix}":
            log.warning("not removing s3://%s/%s: it is not the prefix of run %s", bucket, prefix, run_id)
            continue
        keys = guarded(f"s3://{bucket}/{prefix}", lambda b=bucket, p=prefix: _keys(ctx, b, p), default=None)
        if keys is None:
            continue
        for key in keys:
            guarded(f"s3://{bucket}/{key}", lambda b=bucket, k=key: _call(
                ctx, f"deleting s3://{b}/{k}", s3.delete_object, service="s3", Bucket=b, Key=k))
        removed.append(objects)
    if failed:
        raise TransferError(
            f"could not remove {len(failed)} resource(s) created by run {run_id}: {'; '.join(failed)}. Run the clean-up "
            f"again, or delete them by hand: they carry the tag {RUN_TAG}={run_id}."
        )
    return removed


def run_resources(ctx: AwsContext, run_id: str, s3_prefix: str | None) -> list[Resource]:
    """What run ``run_id`` left: the images and snapshots tagged with its id, and its export prefix if given."""
    found = [Resource(kind="image", id=i, location=ctx.region) for i in _tagged_images(ctx, run_id)]
    found += [Resource(kind="snapshot", id=s, location=ctx.region) for s in _tagged_snapshots(ctx, run_id)]
    if s3_prefix:
        found.append(Resource(kind="s3-prefix", id=s3_prefix, location=ctx.region))
    return found


def _call(ctx: AwsContext, action: str, method, *, service: str = "ec2", **kwargs) -> None:
    with translated(action, service=service, region=ctx.region):
        method(**kwargs)


def _tagged_snapshots(ctx: AwsContext, run_id: str) -> list[str]:
    with translated(f"finding the snapshots of run {run_id}", service="ec2", region=ctx.region):
        pages = ctx.client("ec2").get_paginator("describe_snapshots").paginate(OwnerIds=["self"], Filters=run_filter(run_id))
        return [s["SnapshotId"] for page in pages for s in page.get("Snapshots", [])]


def _tagged_images(ctx: AwsContext, run_id: str) -> list[str]:
    with translated(f"finding the images of run {run_id}", service="ec2", region=ctx.region):
        images = ctx.client("ec2").describe_images(Owners=["self"], Filters=run_filter(run_id)).get("Images", [])
        return [i["ImageId"] for i in images]


def _keys(ctx: AwsContext, bucket: str, prefix: str) -> list[str]:
    with translated(f"listing s3://{bucket}/{prefix}", service="s3", region=ctx.region, subject=f"bucket {bucket}"):
        pages = ctx.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]
