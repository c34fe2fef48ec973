"""moto on 127.0.0.1, with the thin test doubles the aws provider's tests need.

    with MotoAws() as aws:                    # ThreadedMotoServer in this process, ephemeral port
        os.environ.update(aws.env())          # boto3, unchanged, now talks to it
        snap = aws.publish(raw_image)         # a real disk image as an EBS snapshot (EBS direct APIs)
        ami = aws.register_ami(snap)          # an AMI whose root is that snapshot
        iid = aws.launch(ami, [("/dev/xvda", snap), ("/dev/sdb", other)])
        aws.fail("ebs", "GetSnapshotBlock", "AccessDeniedException", skip=3)
        aws.count("ebs", "GetSnapshotBlock")  # counted server-side

moto answers boto3 as AWS would, except in four places that the provider
needs; this module fills exactly those holes, in moto and never in hyperexport:

* moto's EBS direct APIs know only snapshots made with StartSnapshot and
  PutSnapshotBlock. ``publish`` writes a raw image that way; a snapshot that
  EC2 later takes of a volume restored from it (``launch`` maps volumes to
  published snapshots) then reads as that image, as on AWS. ListSnapshotBlocks
  returns pages of ``page_size`` blocks and BlockSize 524288, as AWS does
  (moto ignores NextToken and says 512).
* moto's RegisterImage ignores the block device mappings, root device name and
  boot mode: ``register_ami`` sets them on moto's image.
* moto has no VM Export: ExportImage, CreateInstanceExportTask, their Describe
  calls and CancelExportTask are answered by ``VmExport``, which converts the
  published image with qemu-img and puts it into moto's S3 when the task
  completes (after ``polls`` describes, or never, or refused).
* moto never throttles or fails on cue: ``fail`` makes chosen calls answer an
  AWS error. Every call is recorded server-side (``calls``, ``count``).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import logging
import os
import subprocess
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self
from unittest import mock

import boto3
import requests
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, BaseResponse
from moto.ebs.models import EBSBackend as EbsDirectBackend
from moto.ebs.models import ebs_backends
from moto.ebs.responses import EBSResponse
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.elastic_block_store import EBSBackend as Ec2VolumeBackend
from moto.ec2.responses import EC2Response
from moto.s3.exceptions import S3ClientError
from moto.s3.models import s3_backends
from moto.s3.responses import S3Response
from moto.server import ThreadedMotoServer

ACCOUNT = "123456789012"
REGION = "us-east-1"
EBS_BLOCK = 512 * 1024
GiB = 2**30
_ZERO_BLOCK = bytes(EBS_BLOCK)


class AwsError(ServiceException):
    """An AWS error answered by a double; moto serialises it in the protocol of whichever service raised it."""


@dataclass
class Fault:
    service: str
    action: str
    code: str
    message: str
    skip: int = 0  # let this many matching calls through first
    times: int | None = 1  # None: every matching call from then on


@dataclass
class Call:
    service: str
    action: str
    target: str | None  # SnapshotId / InstanceId / ImageId / bucket key, when the call has one


@dataclass
class ExportTask:
    task_id: str
    kind: str  # "image" or "instance"
    source_id: str
    origin_snapshot: str  # the published snapshot that holds the disk
    fmt: str
    bucket: str
    prefix: str
    tags: list[dict[str, str]]
    status: str = "active"
    message: str = ""
    polls: int = 0

    @property
    def key(self) -> str:
        return f"{self.prefix}{self.task_id}.{self.fmt.lower()}"


@dataclass
class VmExport:
    """How the fake VM Export behaves: complete after ``polls`` describes, never, or refuse with ``refusal``."""

    polls: int = 1
    never: bool = False
    refusal: str | None = None
    tasks: dict[str, ExportTask] = field(default_factory=dict)
    cancelled: list[str] = field(default_factory=list)


class MotoAws:
    """See the module docstring. One per test session; ``reset`` between tests."""

    def __init__(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint = ""
        self._lock = threading.Lock()
        self._patches: list = []
        self.reset_state()

    # -- lifecycle ---------------------------------------------------------
    def __enter__(self) -> Self:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._patches = [mock.patch.dict(os.environ, {"MOTO_EC2_LOAD_DEFAULT_AMIS": "false"})]  # faster resets
        self._patches[0].start()
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        global _CURRENT
        _CURRENT = self
        self._patches += [
            mock.patch.object(BaseResponse, "call_action", _call_action),
            mock.patch.object(S3Response, "get_object", _s3_get_object),
            mock.patch.object(EBSResponse, "list_snapshot_blocks", _list_snapshot_blocks),
            mock.patch.object(EbsDirectBackend, "get_snapshot_block", _get_snapshot_block),
            mock.patch.object(Ec2VolumeBackend, "create_snapshot", _create_snapshot),
            *(mock.patch.object(EC2Response, name, fn, create=True) for name, fn in _VM_EXPORT_ACTIONS.items()),
        ]
        for patch in self._patches[1:]:
            patch.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for patch in reversed(self._patches):
            patch.stop()
        self.server.stop()

    def env(self) -> dict[str, str]:
        """Environment that points boto3's default chain at this server, with fake keys and no host config."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": "/nonexistent/aws-config",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def reset_state(self) -> None:
        """Forget this module's state (faults, calls, published images, export tasks)."""
        with getattr(self, "_lock", threading.Lock()):
            self.faults: list[Fault] = []
            self.calls: list[Call] = []
        self.published: dict[str, int] = {}  # published snapshot id -> blocks written
        self.page_size = 4
        self.snapshot_delay = 0.2  # seconds a snapshot of a published volume stays pending (0: completed at once)
        self.snapshot_outcome = "completed"  # or "error"
        self.vm_export = VmExport()

    def reset(self) -> None:
        """Empty moto (every backend) and this module's state."""
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=30).raise_for_status()
        self.reset_state()

    def client(self, service: str, region: str = REGION, session: boto3.Session | None = None):
        session = session or boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
        return session.client(service, region_name=region, endpoint_url=self.endpoint)

    # -- faults and the call log ---------------------------------------------
    def fail(self, service: str, action: str, code: str, message: str | None = None, *, skip: int = 0,
             times: int | None = 1) -> Fault:  # fmt: skip
        fault = Fault(service, action, code, message or f"{code} (injected by the test)", skip, times)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    def count(self, service: str, action: str, target: str | None = None) -> int:
        with self._lock:
            return sum(1 for c in self.calls if (c.service, c.action) == (service, action) and target in (None, c.target))

    def _take(self, service: str, action: str, target: str | None) -> Fault | None:
        with self._lock:
            self.calls.append(Call(service, action, target))
            for fault in self.faults:
                if (fault.service, fault.action) != (service, action) or fault.times == 0:
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    return None
                if fault.times is not None:
                    fault.times -= 1
                return fault
        return None

    # -- building a world ------------------------------------------------------
    def publish(self, raw: Path, volume_gib: int = 1, *, bad_checksum_block: int | None = None) -> str:
        """Write the non-zero 512 KiB blocks of ``raw`` as a new EBS snapshot; returns its id."""
        ebs = self.client("ebs")
        snapshot_id = ebs.start_snapshot(VolumeSize=volume_gib, Description=f"published {raw.name}")["SnapshotId"]
        written = 0
        for index, block in _data_blocks(raw):
            digest = hashlib.sha256(block if index != bad_checksum_block else b"not these bytes").digest()
            ebs.put_snapshot_block(
                SnapshotId=snapshot_id, BlockIndex=index, BlockData=block, DataLength=EBS_BLOCK,
                Checksum=base64.b64encode(digest).decode(), ChecksumAlgorithm="SHA256",
            )  # fmt: skip
            written += 1
        ebs.complete_snapshot(SnapshotId=snapshot_id, ChangedBlocksCount=written)
        self.published[snapshot_id] = written
        return snapshot_id

    def register_ami(self, root_snapshot: str, *, name: str = "web-image", root_device: str = "/dev/xvda",
                     boot_mode: str = "uefi") -> str:  # fmt: skip
        """RegisterImage, then give moto's image the root device, boot mode and snapshot that moto dropped."""
        image_id = self.client("ec2").register_image(
            Name=name, RootDeviceName=root_device, BootMode=boot_mode, Architecture="x86_64",
            BlockDeviceMappings=[{"DeviceName": root_device, "Ebs": {"SnapshotId": root_snapshot}}],
        )["ImageId"]  # fmt: skip
        ec2 = _ec2_backend()
        image = ec2.amis[image_id]
        image.root_device_name, image.boot_mode, image.architecture = root_device, boot_mode, "x86_64"
        image.ebs_snapshot = ec2.snapshots[root_snapshot]
        return image_id

    def launch(self, image_id: str, volumes: list[tuple[str, str]], *, name: str = "web01",
               instance_type: str = "t3.large", extra_nics: int = 1) -> str:  # fmt: skip
        """An instance whose volumes (device, published snapshot) are restored from those snapshots."""
        ec2 = self.client("ec2")
        instance = ec2.run_instances(
            ImageId=image_id, MinCount=1, MaxCount=1, InstanceType=instance_type,
            BlockDeviceMappings=[
                {"DeviceName": device, "Ebs": {"SnapshotId": snap, "VolumeSize": 1, "DeleteOnTermination": True}}
                for device, snap in volumes
            ],
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}],
        )["Instances"][0]  # fmt: skip
        for index in range(1, extra_nics + 1):
            eni = ec2.create_network_interface(SubnetId=instance["SubnetId"])["NetworkInterface"]
            ec2.attach_network_interface(
                NetworkInterfaceId=eni["NetworkInterfaceId"], InstanceId=instance["InstanceId"], DeviceIndex=index
            )
        return instance["InstanceId"]

    def set_snapshot_state(self, snapshot_id: str, state: str) -> None:
        """Put an EC2 snapshot into ``state`` (e.g. "error"), which moto never does by itself."""
        _ec2_backend().snapshots[snapshot_id].status = state

    def inventory(self) -> dict[str, set[str]]:
        """Every snapshot, image, volume and S3 object moto holds now."""
        ec2, s3 = self.client("ec2"), self.client("s3")
        objects = set()
        for bucket in s3.list_buckets().get("Buckets", []):
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
                objects |= {f"{bucket['Name']}/{o['Key']}" for o in page.get("Contents", [])}
        return {
            "snapshots": {s["SnapshotId"] for s in ec2.describe_snapshots()["Snapshots"]},
            "images": {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]},
            "volumes": {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]},
            "objects": objects,
        }

    def tagged(self, run_id: str | None = None) -> dict[str, list[str]]:
        """Snapshots and images that carry ``hyperexport:run-id`` (= ``run_id``, or any run)."""
        ec2 = self.client("ec2")
        if run_id:
            filters = [{"Name": "tag:hyperexport:run-id", "Values": [run_id]}]
        else:
            filters = [{"Name": "tag-key", "Values": ["hyperexport:run-id"]}]
        return {
            "snapshots": [s["SnapshotId"] for s in ec2.describe_snapshots(Filters=filters)["Snapshots"]],
            "images": [i["ImageId"] for i in ec2.describe_images(Owners=["self"], Filters=filters)["Images"]],
        }


_CURRENT: MotoAws | None = None


def _data_blocks(raw: Path):
    """(index, 512 KiB block) for every block of ``raw`` that is not all zeros, found with SEEK_DATA."""
    with open(raw, "rb") as image:
        fd, size, position, last = image.fileno(), os.fstat(image.fileno()).st_size, 0, -1
        while position < size:
            try:
                start = os.lseek(fd, position, os.SEEK_DATA)
            except OSError:  # ENXIO: no data after position
                return
            end = os.lseek(fd, start, os.SEEK_HOLE)
            for index in range(max(start // EBS_BLOCK, last + 1), -(-end // EBS_BLOCK)):
                block = os.pread(fd, EBS_BLOCK, index * EBS_BLOCK).ljust(EBS_BLOCK, b"\0")
                if block != _ZERO_BLOCK:
                    yield index, block
                last = index
            position = end


def _world() -> MotoAws:
    assert _CURRENT is not None, "MotoAws is not running"
    return _CURRENT


def _ec2_backend(region: str = REGION):
    from moto.ec2.models import ec2_backends

    return ec2_backends[ACCOUNT][region]


# -- moto patches: faults and the call log ----------------------------------
_ORIGINAL_CALL_ACTION = BaseResponse.call_action
_ORIGINAL_S3_GET = S3Response.get_object
_ORIGINAL_GET_BLOCK = EbsDirectBackend.get_snapshot_block
_ORIGINAL_CREATE_SNAPSHOT = Ec2VolumeBackend.create_snapshot


def _call_action(self):
    action = self._get_action()
    target = next((self._get_param(k) for k in ("SnapshotId", "InstanceId", "ImageId") if self._get_param(k)), None)
    fault = _world()._take(self.service_name, action, target)
    if fault is not None:
        error = AwsError(fault.code, fault.message)
        status, headers, body = self.serialized(ActionResult(error))
        return status, headers, body
    return _ORIGINAL_CALL_ACTION(self)


def _s3_get_object(self):
    fault = _world()._take("s3", "GetObject", getattr(self, "key_name", None))
    if fault is not None:
        raise S3ClientError(fault.code, fault.message)
    return _ORIGINAL_S3_GET(self)


# -- moto patches: EBS direct APIs that know EC2's snapshots -------------------
def _resolve(backend, snapshot_id: str):
    """The EBS-direct view of ``snapshot_id``: published, or taken of a volume restored from a published one."""
    if snapshot_id in backend.snapshots:
        return backend.snapshots[snapshot_id]
    ec2_snapshot = backend.ec2_backend.snapshots.get(snapshot_id)
    origin = getattr(getattr(ec2_snapshot, "volume", None), "snapshot_id", None)
    if origin and origin in backend.snapshots:
        clone = copy.copy(backend.snapshots[origin])
        clone.snapshot_id = snapshot_id
        backend.snapshots[snapshot_id] = clone
        return clone
    raise AwsError("ResourceNotFoundException", f"The snapshot '{snapshot_id}' does not exist.")


def _list_snapshot_blocks(self):
    snapshot = _resolve(self.ebs_backend, self._get_param("SnapshotId"))
    start = int(self._get_param("NextToken") or self._get_param("StartingBlockIndex") or 0)
    limit = min(int(self._get_param("MaxResults") or 10000), _world().page_size)
    indexes = sorted(i for i in snapshot.blocks if i >= start)
    result = {
        "Blocks": [{"BlockIndex": i, "BlockToken": snapshot.blocks[i].block_token} for i in indexes[:limit]],
        "VolumeSize": snapshot.volume_size,
        "BlockSize": EBS_BLOCK,
    }
    if len(indexes) > limit:
        result["NextToken"] = str(indexes[limit])
    return ActionResult(result)


def _get_snapshot_block(self, snapshot_id: str, block_index: int):
    _resolve(self, snapshot_id)
    return _ORIGINAL_GET_BLOCK(self, snapshot_id, int(block_index))


def _create_snapshot(self, *args, **kwargs):
    snapshot = _ORIGINAL_CREATE_SNAPSHOT(self, *args, **kwargs)
    world = _world()
    if getattr(snapshot.volume, "snapshot_id", None) not in world.published:
        return snapshot
    if not world.snapshot_delay:
        snapshot.status = world.snapshot_outcome
        return snapshot
    snapshot.status = "pending"  # as on AWS: a new snapshot completes a little later (or fails)
    timer = threading.Timer(world.snapshot_delay, setattr, (snapshot, "status", world.snapshot_outcome))
    timer.daemon = True
    timer.start()
    return snapshot


# -- moto additions: VM Export -------------------------------------------------
def _new_task(self, kind: str, source_id: str, origin: str, fmt: str, bucket: str, prefix: str) -> ExportTask:
    try:
        s3_backends[self.current_account]["aws"].get_bucket(bucket)
    except S3ClientError:
        raise EC2ClientError("InvalidParameter", f"The bucket {bucket} does not exist or is not accessible.") from None
    tags = next((spec.get("Tags", spec.get("Tag", [])) for spec in self._get_param("TagSpecifications", []) or []), [])
    prefix_id = "export-ami-" if kind == "image" else "export-i-"
    task = ExportTask(prefix_id + uuid.uuid4().hex[:17], kind, source_id, origin, fmt, bucket, prefix, tags)
    export = _world().vm_export
    export.tasks[task.task_id] = task
    s3_backends[self.current_account]["aws"].put_object(bucket, f"{prefix}vmimportexport_write_verification", b"")
    return task


def _advance(self, task: ExportTask) -> None:
    export = _world().vm_export
    if task.status != "active" or export.never:
        return
    task.polls += 1
    if task.polls < export.polls:
        return
    if export.refusal:
        task.status, task.message = ("deleted" if task.kind == "image" else "cancelled"), export.refusal
        return
    _write_export(self.current_account, self.region, task)
    task.status = "completed"


def _write_export(account: str, region: str, task: ExportTask) -> None:
    """The published image behind the task, converted as VM Export would, put into moto's S3."""
    snapshot = _resolve(ebs_backends[account][region], task.origin_snapshot)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "disk.raw"
        with open(raw, "wb") as handle:
            handle.truncate(snapshot.volume_size * GiB)
            for index, block in snapshot.blocks.items():
                os.pwrite(handle.fileno(), block.block_data, index * EBS_BLOCK)
        out = raw
        options = {"VMDK": ["-O", "vmdk", "-o", "subformat=streamOptimized"],
                   "VHD": ["-O", "vpc", "-o", "subformat=dynamic,force_size=on"]}.get(task.fmt)  # fmt: skip
        if options:
            out = Path(tmp) / f"disk.{task.fmt.lower()}"
            subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", *options, str(raw), str(out)], check=True)
        s3_backends[account]["aws"].put_object(task.bucket, task.key, out.read_bytes())


def _image_task_view(task: ExportTask) -> dict:
    return {
        "ExportImageTaskId": task.task_id, "ImageId": task.source_id, "Status": task.status,
        "StatusMessage": task.message, "Progress": "100" if task.status == "completed" else "40",
        "S3ExportLocation": {"S3Bucket": task.bucket, "S3Prefix": task.prefix}, "Tags": task.tags,
    }  # fmt: skip


def _instance_task_view(task: ExportTask) -> dict:
    return {
        "ExportTaskId": task.task_id, "State": task.status, "StatusMessage": task.message, "Tags": task.tags,
        "InstanceExportDetails": {"InstanceId": task.source_id, "TargetEnvironment": "vmware"},
        "ExportToS3Task": {"DiskImageFormat": task.fmt, "S3Bucket": task.bucket, "S3Key": task.key},
    }  # fmt: skip


def export_image(self):
    image_id = self._get_param("ImageId")
    image = self.ec2_backend.describe_images(ami_ids=[image_id])[0]
    location = self._get_param("S3ExportLocation") or {}
    task = _new_task(self, "image", image_id, image.ebs_snapshot.id, self._get_param("DiskImageFormat"),
                     location.get("S3Bucket"), location.get("S3Prefix", ""))  # fmt: skip
    return ActionResult({**_image_task_view(task), "DiskImageFormat": task.fmt})


def _describe(self, kind: str, ids_param: str, view) -> list[dict]:
    """The tasks asked for (or all of ``kind``), each advanced one poll first."""
    tasks = _world().vm_export.tasks
    wanted = [t for t in self._get_param(ids_param) or [t for t in tasks if tasks[t].kind == kind] if t in tasks]
    for task_id in wanted:
        _advance(self, tasks[task_id])
    return [view(tasks[t]) for t in wanted]


def describe_export_image_tasks(self):
    return ActionResult({"ExportImageTasks": _describe(self, "image", "ExportImageTaskIds", _image_task_view)})


def create_instance_export_task(self):
    instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))
    root = instance.block_device_mapping[instance.root_device_name]
    origin = self.ec2_backend.get_volume(root.volume_id).snapshot_id
    spec = self._get_param("ExportToS3Task") or {}
    task = _new_task(self, "instance", instance.id, origin, spec.get("DiskImageFormat", "VMDK"), spec.get("S3Bucket"),
                     spec.get("S3Prefix", ""))  # fmt: skip
    return ActionResult({"ExportTask": _instance_task_view(task)})


def describe_export_tasks(self):
    return ActionResult({"ExportTasks": _describe(self, "instance", "ExportTaskIds", _instance_task_view)})


def cancel_export_task(self):
    export = _world().vm_export
    task = export.tasks.get(self._get_param("ExportTaskId"))
    if task is None:
        raise EC2ClientError("InvalidExportTaskID.NotFound", "The export task ID does not exist.")
    if task.status != "active":
        raise EC2ClientError("IncorrectState", f"Export task {task.task_id} is {task.status} and cannot be cancelled.")
    task.status = "deleted" if task.kind == "image" else "cancelled"
    export.cancelled.append(task.task_id)
    return ActionResult({})


_VM_EXPORT_ACTIONS = {
    "export_image": export_image,
    "describe_export_image_tasks": describe_export_image_tasks,
    "create_instance_export_task": create_instance_export_task,
    "describe_export_tasks": describe_export_tasks,
    "cancel_export_task": cancel_export_task,
}
