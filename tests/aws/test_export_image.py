"""The export-image method against moto and the VM Export double: ExportImage, CreateInstanceExportTask, S3."""

from __future__ import annotations

import pytest
from support.migrate import assert_identical
from support.moto_aws import REGION

from hyperexport import migration
from hyperexport.errors import (
    AccessDeniedError,
    InvalidInputError,
    SourceNotFoundError,
    TransferError,
)
from hyperexport.migration import run_migration
from hyperexport.models import DiskFormat, DiskSource
from hyperexport.providers.aws import AwsOptions, provider
from hyperexport.providers.aws import export_image as aws_export_image
from hyperexport.providers.aws.metadata import Volume
from hyperexport.transfer import TransferOptions, download

BUCKET = "exports"


@pytest.fixture
def bucket(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="hyperexport/earlier-run/old.vmdk", Body=b"someone else's export")
    return BUCKET


def test_ami_migrates_through_export_image(aws, bucket, root_raw, make_request, tmp_path):
    image = aws.register_ami(aws.publish(root_raw))
    before = aws.inventory()

    report = run_migration(make_request(tmp_path / "out", ami=image, export_method="export-image", bucket=bucket))

    assert report.success and report.export_method == "export-image"
    assert report.disks[0].format is DiskFormat.vmdk
    assert_identical(root_raw, "raw", report.conversion.converted_files[0])
    (task,) = aws.vm_export.tasks.values()
    assert task.fmt == "VMDK" and task.prefix.startswith("hyperexport/") and task.prefix.endswith("/")
    assert {"Key": "hyperexport:run-id", "Value": task.prefix.split("/")[1]} in task.tags
    assert aws.count("s3", "GetObject") >= 1
    assert aws.inventory() == before  # the export object and AWS's write-verification object are gone


def test_instance_with_one_volume_exports_as_vhd(aws, bucket, root_raw, make_request, tmp_path):
    snapshot = aws.publish(root_raw)
    instance = aws.launch(aws.register_ami(snapshot), [("/dev/xvda", snapshot)], extra_nics=0)
    before = aws.inventory()

    request = make_request(tmp_path / "out", instance=instance, export_method="export-image", bucket=bucket,
                           disk_format="vhd")
    report = run_migration(request)

    assert report.disks[0].format is DiskFormat.vhd
    assert_identical(root_raw, "raw", report.conversion.converted_files[0])
    assert aws.count("ec2", "CreateInstanceExportTask") == 1
    assert aws.inventory() == before


def test_s3_download_is_ranged_and_checksum_verified(aws, bucket, tmp_path):
    data = bytes(range(256)) * 40_000  # ~10 MiB, several ranges
    aws.client("s3").put_object(Bucket=bucket, Key="disk.vmdk", Body=data)
    disk = DiskSource(id="disk-0", location=f"s3://{bucket}/disk.vmdk", file_name="disk.vmdk")
    source = provider.open_disk(disk, AwsOptions(ami="ami-0123456789abcdef0", region=REGION), None)

    result = download(source, tmp_path / "disk.vmdk", TransferOptions(connections=4, chunk_size=1024 * 1024))

    assert (tmp_path / "disk.vmdk").read_bytes() == data
    assert {"md5", "crc32"} <= set(result.verified_checksums)
    assert aws.count("s3", "GetObject") == result.ranges_fetched == 10


def test_export_that_does_not_finish_in_time_is_cancelled(aws, bucket, root_raw, make_request, tmp_path):
    image = aws.register_ami(aws.publish(root_raw))
    aws.vm_export.never = True
    before = aws.inventory()
    request = make_request(tmp_path / "out", ami=image, export_method="export-image", bucket=bucket,
                           export={"export_timeout_seconds": 0.3})

    with pytest.raises(TransferError, match=r"export task export-ami-\w+ of image ami-\w+ did not finish within 0s"):
        migration.export_vm(migration.preflight(request))

    assert list(aws.vm_export.cancelled) == list(aws.vm_export.tasks)
    assert aws.inventory() == before


@pytest.mark.parametrize("refusal, error, advice", [
    ("This image contains an AWS Marketplace product code and cannot be exported.", InvalidInputError, "ebs-direct"),
    ("Insufficient permissions - please verify bucket ownership and write permissions on the bucket.",
     AccessDeniedError, "vmimport"),
])  # fmt: skip
def test_aws_refusals_surface_with_advice(refusal, error, advice, aws, bucket, root_raw, make_request, tmp_path):
    image = aws.register_ami(aws.publish(root_raw))
    aws.vm_export.refusal = refusal
    before = aws.inventory()
    request = make_request(tmp_path / "out", ami=image, export_method="export-image", bucket=bucket)

    with pytest.raises(error) as raised:
        migration.export_vm(migration.preflight(request))

    assert f"AWS VM Export refused image {image}: {refusal}" in str(raised.value) and advice in str(raised.value)
    assert aws.inventory() == before


def test_documented_limits_are_refused_before_any_task(aws, light01, bucket, make_request, tmp_path):
    request = make_request(tmp_path / "out", instance=light01.instance_id, export_method="export-image", bucket=bucket)

    with pytest.raises(InvalidInputError) as raised:
        migration.export_vm(migration.preflight(request))

    message = str(raised.value)
    assert f"AWS VM Export cannot export instance {light01.instance_id}" in message
    assert "2 EBS volumes" in message and "2 network interfaces" in message and "ebs-direct export method" in message
    assert aws.vm_export.tasks == {}


def test_missing_bucket_is_named(aws, root_raw, make_request, tmp_path):
    image = aws.register_ami(aws.publish(root_raw))
    request = make_request(tmp_path / "out", ami=image, export_method="export-image", bucket="no-such-bucket")

    with pytest.raises(SourceNotFoundError, match="bucket no-such-bucket was not found"):
        migration.export_vm(migration.preflight(request))


@pytest.mark.parametrize("volumes, details, codes, reason", [
    ([Volume("/dev/sda1", 30)], "Windows", [], "AWS-supplied (license-included) Windows"),
    ([Volume("/dev/sda1", 30)], "Windows with SQL Server Standard", [], "AWS-supplied SQL Server"),
    ([Volume("/dev/sda1", 30)], "Linux/UNIX", [{"ProductCodeId": "abc"}], "AWS Marketplace product codes"),
    ([Volume("/dev/sda1", 30, encrypted=True)], "Linux/UNIX", [], "volume /dev/sda1 is encrypted"),
    ([Volume("/dev/sda1", 2048)], "Linux/UNIX", [], "volume /dev/sda1 (2048 GiB) is over 1 TiB"),
])  # fmt: skip
def test_each_documented_limit_has_its_reason(volumes, details, codes, reason):
    reasons = aws_export_image.refusals(volumes, product_codes=codes, platform_details=details)
    assert reasons and reason in reasons[0]
    with pytest.raises(InvalidInputError, match="ebs-direct export method"):
        aws_export_image.refuse_if_unexportable("image ami-1", reasons)


def test_bring_your_own_license_windows_may_be_exported():
    assert aws_export_image.refusals([Volume("/dev/sda1", 30)], product_codes=[], platform_details="Windows BYOL") == []
