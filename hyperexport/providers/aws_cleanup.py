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

from ..errors import HyperExportError, SourceNotFoundError, TransferError
from .aws_clients import RUN_TAG, AwsContext, run_filter
from .aws_errors import translated
from .aws_export_image import cancel

log = logging.getLogger(__name__)


def remove(ctx: AwsContext, run_id: str, created: list[str]) -> list[str]:
    """Delete what run ``run_id`` created; returns ``kind:id`` of each resource removed."""
    removed: list[str] = []
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

    def delete(label: str, action) -> None:
        if guarded(label, lambda: action() or True, default=False):
            removed.append(label)

    for entry in created:
        kind, _, task_id = entry.partition(":")
        if kind in ("export-image-task", "export-instance-task"):  # a running task would write its object later
            guarded(f"export task {task_id}", lambda t=task_id: cancel(ctx, t))
    ec2, s3 = ctx.client("ec2"), ctx.client("s3")
    images = guarded("the run's images", lambda: _tagged_images(ctx, run_id), default=[])
    snapshots = guarded("the run's snapshots", lambda: _tagged_snapshots(ctx, run_id), default=[])
    for i in images:
        delete(f"image:{i}", lambda i=i: _call(ctx, f"deregistering image {i}", ec2.deregister_image, ImageId=i))
    for s in snapshots:
        delete(f"snapshot:{s}", lambda s=s: _call(ctx, f"deleting snapshot {s}", ec2.delete_snapshot, SnapshotId=s))
    for entry in created:
        kind, _, where = entry.partition(":")
        bucket, _, prefix = where.partition("/")
        if kind != "s3":
            continue
        if f"/{run_id}/" not in f"/{prefix}":
            log.warning("not removing s3://%s/%s: it is not the prefix of run %s", bucket, prefix, run_id)
            continue
        for key in guarded(f"s3://{bucket}/{prefix}", lambda b=bucket, p=prefix: _keys(ctx, b, p), default=[]):
            delete(f"s3:{bucket}/{key}", lambda b=bucket, k=key: _call(
                ctx, f"deleting s3://{b}/{k}", s3.delete_object, service="s3", Bucket=b, Key=k))
    recorded = {e.partition(":")[2] for e in created if e.startswith(("snapshot:", "image:"))}
    for resource in sorted(recorded - set(images) - set(snapshots)):
        log.info("%s is not tagged %s=%s (or is already gone): left alone", resource, RUN_TAG, run_id)
    if failed:
        raise TransferError(
            f"could not remove {len(failed)} resource(s) created by run {run_id}: {'; '.join(failed)}. Run the clean-up "
            f"again, or delete them by hand: they carry the tag {RUN_TAG}={run_id}."
        )
    return removed


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
