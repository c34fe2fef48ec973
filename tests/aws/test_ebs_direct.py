"""The ebs-direct method against moto: snapshot set, block-by-block download, metadata, clean-up."""

from __future__ import annotations

import json

import pytest
from support.migrate import assert_identical

from hyperexport import migration
from hyperexport.migration import run_migration
from hyperexport.providers import lifecycle
from hyperexport.providers.aws import AwsOptions, provider
from hyperexport.providers.aws.metadata import Volume, ordered


def _check_disks(report, raws):
    assert report.success
    outputs = report.conversion.converted_files
    assert len(outputs) == len(raws)
    for raw, output in zip(raws, outputs):
        assert_identical(raw, "raw", output)


def test_instance_with_two_volumes_migrates_identically(aws, web01, root_raw, data_raw, make_request, tmp_path):
    aws.client("s3").create_bucket(Bucket="unrelated")
    aws.client("s3").put_object(Bucket="unrelated", Key="keep/me.txt", Body=b"not ours")
    other_run = aws.client("ec2").create_snapshot(
        VolumeId=aws.client("ec2").describe_volumes()["Volumes"][0]["VolumeId"],
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "hyperexport:run-id", "Value": "another-run"}]}],
    )["SnapshotId"]
    before = aws.inventory()
    aws.clear_calls()

    report = run_migration(make_request(tmp_path / "out", instance=web01.instance_id))

    _check_disks(report, [root_raw, data_raw])
    manifest = json.loads(report.manifest_path.read_text())
    assert [(d["id"], d["disk_type"], d["label"]) for d in manifest["disks"]] == [
        ("disk-0", "boot", "/dev/xvda"), ("disk-1", "data", "/dev/sdb")]
    # Holes are never fetched: one GetSnapshotBlock per listed block, and the listing was read page by page.
    listed = aws.published[web01.root_snapshot] + aws.published[web01.data_snapshot]
    assert aws.count("ebs", "GetSnapshotBlock") == listed
    assert aws.count("ebs", "ListSnapshotBlocks") >= listed / aws.page_size
    assert aws.count("ec2", "CreateSnapshots") == 1 and aws.count("ec2", "CreateSnapshot") == 0
    assert report.disks[0].bytes_fetched == aws.published[web01.root_snapshot] * 512 * 1024
    # Metadata: t3.large is 2 vCPUs / 8 GiB, the AMI boots uefi, MACs in device-index order.
    described = aws.client("ec2").describe_instances(InstanceIds=[web01.instance_id])["Reservations"][0]["Instances"][0]
    macs = [n["MacAddress"] for n in sorted(described["NetworkInterfaces"], key=lambda n: n["Attachment"]["DeviceIndex"])]
    assert manifest["vm"] == {"cpu": 2, "mem_gb": 8, "firmware": "uefi", "secureboot": False, "os_hint": "linux"}
    assert [n["mac"] for n in manifest["nics"]] == macs and len(macs) == 2
    assert manifest["source"]["vm_name"] == "web01" and manifest["source"]["export_method"] == "ebs-direct"
    # Clean-up: the run's snapshots are gone, everything that was there before is still there.
    assert aws.inventory() == before
    assert aws.tagged() == {"snapshots": [other_run], "images": []}


@pytest.mark.parametrize("kind", ["ami", "snapshot"])
def test_ami_and_snapshot_migrate_without_creating_anything(kind, aws, root_raw, make_request, tmp_path):
    snapshot = aws.publish(root_raw)
    image = aws.register_ami(snapshot, boot_mode="legacy-bios")
    before = aws.inventory()
    source = {"ami": image} if kind == "ami" else {"snapshot": snapshot}

    report = run_migration(make_request(tmp_path / "out", **source))

    _check_disks(report, [root_raw])
    assert aws.count("ebs", "GetSnapshotBlock", snapshot) == aws.published[snapshot]
    assert aws.count("ec2", "CreateSnapshots") == 0
    assert aws.inventory() == before
    if kind == "ami":
        vm = json.loads(report.manifest_path.read_text())["vm"]
        assert (vm["firmware"], vm["os_hint"]) == ("bios", "linux")


def test_export_stops_and_restarts_the_instance_and_keep_leaves_the_snapshots(aws, light01, make_request, tmp_path):
    request = make_request(tmp_path / "out", instance=light01.instance_id, stop_instance=True,
                           export={"keep_cloud_artifacts": True})
    export = migration.export_vm(migration.preflight(request))

    assert [aws.count("ec2", a) for a in ("StopInstances", "StartInstances")] == [1, 1]
    state = aws.client("ec2").describe_instances(InstanceIds=[light01.instance_id])["Reservations"][0]["Instances"][0]
    assert state["State"]["Name"] in ("pending", "running")
    run_id = export.run_id
    snapshots = sorted(r.id for r in export.created_resources)
    assert sorted(aws.tagged(run_id)["snapshots"]) == snapshots and len(snapshots) == 2
    assert [d.location for d in export.disks] == [f"ebs://{s}" for s in _by_device(aws, snapshots)]

    assert migration.cleanup(migration.preflight(request), export) == []  # keep_cloud_artifacts: nothing removed
    assert sorted(aws.tagged(run_id)["snapshots"]) == snapshots
    removed = lifecycle.cleanup(provider, export, AwsOptions(instance=light01.instance_id, region="us-east-1"))
    assert sorted((r.kind, r.id) for r in removed) == [("snapshot", s) for s in snapshots]
    assert aws.tagged(run_id)["snapshots"] == []


def _by_device(aws, snapshot_ids):
    """The snapshots ordered as their volumes' devices: /dev/xvda (root) first."""
    ec2 = aws.client("ec2")
    volume_of = {s["SnapshotId"]: s["VolumeId"] for s in ec2.describe_snapshots(SnapshotIds=snapshot_ids)["Snapshots"]}
    device_of = {v["VolumeId"]: v["Attachments"][0]["Device"] for v in ec2.describe_volumes()["Volumes"] if v["Attachments"]}
    return sorted(snapshot_ids, key=lambda s: device_of[volume_of[s]] != "/dev/xvda")


def test_volumes_are_ordered_root_first_then_by_device_name():
    names = ["/dev/sdaa", "/dev/xvdc", "/dev/sdb", "/dev/sda1", "/dev/sdz", "/dev/nvme1n1"]
    volumes = [Volume(device=n, size_gib=1, root=n == "/dev/sda1") for n in names]
    assert [v.device for v in ordered(volumes)] == [
        "/dev/sda1", "/dev/sdb", "/dev/xvdc", "/dev/sdz", "/dev/sdaa", "/dev/nvme1n1"]
