"""The export-image method: AWS VM Import/Export writes the disk to S3, we download it.

An AMI goes through ExportImage, an instance through CreateInstanceExportTask.
Either writes one VMDK, VHD or RAW file under ``<prefix><run id>/`` in the
bucket (AWS also drops a ``vmimportexport_write_verification`` object there);
clean-up removes that run-specific prefix. The task is polled until it is done,
and cancelled when ``export_timeout_seconds`` runs out.

VM Export refuses much (see "Troubleshooting VM Import/Export" and the
export prerequisites in AWS's guide): AWS-supplied Windows or SQL Server,
Marketplace product codes, encrypted volumes, more than one volume or NIC,
volumes over 1 TiB. Those are checked before a task is started, and AWS's own
refusals are passed on, each with what to do: usually, use ebs-direct.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from ...errors import (
    AccessDeniedError,
    HyperExportError,
    InvalidInputError,
    SourceNotFoundError,
)
from ...models import DiskFormat
from ..session import ExportSession
from .clients import AwsContext, tag_specifications
from .errors import aws_message, translated
from .metadata import Volume
from ..polling import wait_for

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_VOLUME_GIB = 1024
_EXTENSIONS = {"VMDK": "vmdk", "VHD": "vhd", "RAW": "raw"}
_USE_EBS_DIRECT = "Use the ebs-direct export method (the default), which reads any EBS snapshot without VM Export."
_ROLE_HINT = (
    "Create the 'vmimport' service role that VM Import/Export needs (or name yours with the role_name option), and "
    "let it write to the bucket."
)


def disk_format(name: str) -> DiskFormat:
    return DiskFormat(_EXTENSIONS[name])


def refusals(
    volumes: list[Volume], *, product_codes: list[Any], platform_details: str | None, nic_count: int = 1
) -> list[str]:
    """Why VM Export would refuse this source (documented limits); empty when it may go ahead."""
    reasons = []
    details = platform_details or ""
    if "SQL Server" in details:
        reasons.append(f"it runs AWS-supplied SQL Server ({details})")
    elif details.startswith("Windows") and "BYOL" not in details:
        reasons.append(f"it runs AWS-supplied (license-included) Windows ({details})")
    if product_codes:
        reasons.append("it carries AWS Marketplace product codes")
    encrypted = [v.device for v in volumes if v.encrypted]
    if encrypted:
        reasons.append(f"volume {', '.join(encrypted)} is encrypted")
    if len(volumes) > 1:
        reasons.append(f"it has {len(volumes)} EBS volumes and VM Export takes one")
    if nic_count > 1:
        reasons.append(f"it has {nic_count} network interfaces and VM Export takes one")
    large = [f"{v.device} ({v.size_gib} GiB)" for v in volumes if v.size_gib > MAX_VOLUME_GIB]
    if large:
        reasons.append(f"volume {', '.join(large)} is over 1 TiB")
    return reasons


def refuse_if_unexportable(subject: str, reasons: list[str]) -> None:
    if reasons:
        raise InvalidInputError(
            f"AWS VM Export cannot export {subject}: {'; '.join(reasons)}. {_USE_EBS_DIRECT}", field="source.export_method"
        )


def _refused(subject: str, message: str) -> HyperExportError:
    lowered = message.lower()
    if "role" in lowered or "permission" in lowered or "bucket" in lowered:
        return AccessDeniedError(f"AWS VM Export refused {subject}: {message}. {_ROLE_HINT}")
    return InvalidInputError(f"AWS VM Export refused {subject}: {message}. {_USE_EBS_DIRECT}", field="source.export_method")


def check_bucket(ctx: AwsContext, bucket: str) -> None:
    """The bucket exists, we may use it, and it is in the export's region (VM Export requires that)."""
    s3 = ctx.client("s3")
    with translated(f"checking bucket {bucket}", service="s3", region=ctx.region, subject=f"bucket {bucket}"):
        s3.head_bucket(Bucket=bucket)
        location = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") or "us-east-1"
    if location == "EU":
        location = "eu-west-1"
    if location != ctx.region:
        raise InvalidInputError(
            f"bucket {bucket} is in {location}, but VM Export writes only to a bucket in the export's region "
            f"({ctx.region}). Use a bucket in {ctx.region}."
        )


def run_prefix(prefix: str, run_id: str) -> str:
    base = prefix.strip("/")
    return f"{base}/{run_id}/" if base else f"{run_id}/"


def export_image(
    ctx: AwsContext, image_id: str, *, bucket: str, prefix: str, fmt: str, role_name: str | None, session: ExportSession,
    timeout: float, interval: float,
) -> str:  # fmt: skip
    """Run ExportImage for ``image_id``; returns the key of the object it wrote."""
    ec2 = ctx.client("ec2")
    subject = f"image {image_id}"
    request: dict[str, Any] = {
        "ImageId": image_id,
        "DiskImageFormat": fmt,
        "S3ExportLocation": {"S3Bucket": bucket, "S3Prefix": prefix},
        "Description": f"hyperexport run {session.run_id}",
        # No ClientToken: botocore makes one per call and reuses it on its own retries. The run id would not
        # do, since a retried export step of the same flow run must start a new task.
        "TagSpecifications": tag_specifications("export-image-task", session),
    }
    if role_name:
        request["RoleName"] = role_name
    session.record("s3-prefix", f"{bucket}/{prefix}", ctx.region)
    task_id = _start(ctx, subject, lambda: ec2.export_image(**request)["ExportImageTaskId"])
    session.record("export-image-task", task_id, ctx.region)
    log.info("export task %s: %s to s3://%s/%s", task_id, subject, bucket, prefix)

    _wait(ctx, task_id, subject, "Status", lambda: ec2.describe_export_image_tasks(ExportImageTaskIds=[task_id]).get(
        "ExportImageTasks", []), timeout=timeout, interval=interval)
    return f"{prefix}{task_id}.{_EXTENSIONS[fmt]}"


def export_instance(
    ctx: AwsContext, instance_id: str, *, bucket: str, prefix: str, fmt: str, session: ExportSession, timeout: float,
    interval: float,
) -> str:  # fmt: skip
    """Run CreateInstanceExportTask for ``instance_id``; returns the key of the object it wrote."""
    ec2 = ctx.client("ec2")
    subject = f"instance {instance_id}"
    session.record("s3-prefix", f"{bucket}/{prefix}", ctx.region)
    task = _start(ctx, subject, lambda: ec2.create_instance_export_task(
        InstanceId=instance_id,
        TargetEnvironment="microsoft" if fmt == "VHD" else "vmware",
        ExportToS3Task={"DiskImageFormat": fmt, "S3Bucket": bucket, "S3Prefix": prefix},
        Description=f"hyperexport run {session.run_id}",
        TagSpecifications=tag_specifications("export-instance-task", session),
    )["ExportTask"])
    task_id = task["ExportTaskId"]
    session.record("export-instance-task", task_id, ctx.region)
    log.info("export task %s: %s to s3://%s/%s", task_id, subject, bucket, prefix)

    done = _wait(ctx, task_id, subject, "State", lambda: ec2.describe_export_tasks(ExportTaskIds=[task_id]).get(
        "ExportTasks", []), timeout=timeout, interval=interval)
    return done.get("ExportToS3Task", {}).get("S3Key") or task.get("ExportToS3Task", {}).get("S3Key") or (
        f"{prefix}{task_id}.{_EXTENSIONS[fmt]}"
    )


def _wait(
    ctx: AwsContext, task_id: str, subject: str, state_key: str, describe: Callable[[], list[dict[str, Any]]], *,
    timeout: float, interval: float,
) -> dict[str, Any]:  # fmt: skip
    """Poll an export task until it completes; it is refused when it ends otherwise, cancelled when time runs out."""

    def check() -> dict[str, Any] | None:
        with translated(f"describing export task {task_id}", service="ec2", region=ctx.region):
            tasks = describe()
        if not tasks:
            raise SourceNotFoundError(f"export task {task_id} of {subject} vanished; run again")
        state = tasks[0].get(state_key)
        if state == "completed":
            return tasks[0]
        if state in ("deleted", "deleting", "cancelled", "cancelling"):
            raise _refused(subject, tasks[0].get("StatusMessage") or f"the task ended in state {state}")
        log.info("export task %s: %s %s%% %s", task_id, state, tasks[0].get("Progress", "?"), tasks[0].get("StatusMessage", ""))
        return None

    def cancel_task() -> None:
        cancel(ctx, task_id)  # whether it was still running is logged by cancel()

    return wait_for(
        check, what=f"export task {task_id} of {subject}", timeout=timeout, interval=interval,
        on_timeout=cancel_task,
    )  # fmt: skip


def cancel(ctx: AwsContext, task_id: str) -> bool:
    """Cancel an export task; False when it had already finished or gone."""
    try:
        with translated(f"cancelling export task {task_id}", service="ec2", region=ctx.region):
            ctx.client("ec2").cancel_export_task(ExportTaskId=task_id)
    except (InvalidInputError, SourceNotFoundError) as error:
        log.info("export task %s was not cancelled: %s", task_id, error)
        return False
    log.info("cancelled export task %s", task_id)
    return True


def object_size(ctx: AwsContext, bucket: str, key: str) -> int:
    with translated(f"reading the attributes of s3://{bucket}/{key}", service="s3", region=ctx.region,
                    subject=f"export object s3://{bucket}/{key}"):  # fmt: skip
        return int(ctx.client("s3").head_object(Bucket=bucket, Key=key)["ContentLength"])


def _start(ctx: AwsContext, subject: str, call: Callable[[], T]) -> T:
    """Start an export task; VM Export's InvalidParameter-style refusals come back as advice."""
    try:
        with translated(f"starting the export of {subject}", service="ec2", region=ctx.region, subject=subject):
            return call()
    except InvalidInputError as error:
        cause = error.__cause__
        raise _refused(subject, aws_message(cause) or str(error)) from cause
