"""Failures: each gives its message, permanent ones are not retried, and a failed run leaves nothing behind."""

from __future__ import annotations

import json

import pytest
from moto.core.authorization import enable_iam_authentication
from support.moto_aws import REGION

from hyperexport import migration
from hyperexport.errors import (
    AccessDeniedError,
    IntegrityError,
    InvalidInputError,
    PermanentError,
    SourceNotFoundError,
    TransferError,
)
from hyperexport.migration import run_migration
from hyperexport.models import ExportOptions
from hyperexport.providers import lifecycle
from hyperexport.providers.aws import AwsOptions, provider
from hyperexport.providers.aws.clients import make_context
from hyperexport.validate_input import build


def test_run_failed_mid_download_leaves_nothing_behind(aws, web01, make_request, tmp_path):
    before = aws.inventory()
    aws.fail("ebs", "GetSnapshotBlock", "AccessDeniedException", "not authorized", skip=5, times=None)

    with pytest.raises(AccessDeniedError, match=r"AWS denied reading block \d+ .* ebs:GetSnapshotBlock"):
        run_migration(make_request(tmp_path / "out", instance=web01.instance_id))

    assert aws.count("ebs", "GetSnapshotBlock") < aws.published[web01.root_snapshot] + aws.published[web01.data_snapshot]
    assert aws.tagged() == {"snapshots": [], "images": []}
    assert aws.inventory() == before


def test_export_image_run_failed_mid_download_leaves_nothing_behind(aws, root_raw, make_request, tmp_path):
    aws.client("s3").create_bucket(Bucket="exports")
    image = aws.register_ami(aws.publish(root_raw))
    before = aws.inventory()
    aws.fail("s3", "GetObject", "AccessDenied", "Access Denied", times=None)
    request = make_request(tmp_path / "out", ami=image, export_method="export-image", bucket="exports")

    with pytest.raises(AccessDeniedError, match="s3:GetObject"):
        run_migration(request)

    assert len(aws.vm_export.tasks) == 1 and aws.inventory() == before


def test_snapshot_set_in_error_state_is_reported_and_removed(aws, light01, make_request, tmp_path):
    aws.snapshot_outcome = "error"
    before = aws.inventory()

    with pytest.raises(TransferError, match=r"AWS could not complete snapshot snap-\w+ of volume vol-\w+: it is in state error"):
        migration.export_vm(migration.preflight(make_request(tmp_path / "out", instance=light01.instance_id)))

    assert aws.inventory() == before


def test_given_snapshot_in_error_state_is_refused(aws, root_raw, make_request, tmp_path):
    snapshot = aws.publish(root_raw)
    aws.set_snapshot_state(snapshot, "error")
    with pytest.raises(InvalidInputError, match=f"snapshot {snapshot} of volume vol-\\w+ is in state error"):
        migration.export_vm(migration.preflight(make_request(tmp_path / "out", snapshot=snapshot)))


def test_unknown_instance(aws, make_request, tmp_path):
    with pytest.raises(SourceNotFoundError, match=r"instance i-0123456789abcdef0 was not found in region us-east-1"):
        migration.export_vm(migration.preflight(make_request(tmp_path / "out", instance="i-0123456789abcdef0")))


def test_instance_in_another_region(aws, light01, make_request, tmp_path):
    request = make_request(tmp_path / "out", instance=light01.instance_id, region="eu-west-1")
    with pytest.raises(SourceNotFoundError) as raised:
        migration.export_vm(migration.preflight(request))
    assert f"instance {light01.instance_id} was not found in region eu-west-1" in str(raised.value)
    assert "and the region" in str(raised.value) and raised.value.field == "source.region"


def test_unknown_name_tag(aws, light01, make_request, tmp_path):
    with pytest.raises(SourceNotFoundError, match="instance db07 was not found in region us-east-1"):
        migration.export_vm(migration.preflight(make_request(tmp_path / "out", instance="db07")))
    assert migration.export_vm(migration.preflight(make_request(tmp_path / "out", instance="web01"))).vm.vm_id == light01.instance_id


def test_rejected_credentials_are_not_retried(aws, light01, tmp_path):
    import boto3

    session = boto3.Session(aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="wrong", region_name=REGION)
    options = AwsOptions(instance=light01.instance_id, region=REGION, api_max_attempts=5)
    aws.clear_calls()
    with enable_iam_authentication(), pytest.raises(AccessDeniedError) as raised:
        lifecycle.export(provider, options, build(ExportOptions, output_dir=tmp_path), session)
    message = str(raised.value)
    assert "AWS did not accept the credentials while describing instance" in message and "AuthFailure" in message
    assert "wrong" not in message and "AKIAIOSFODNN7EXAMPLE" not in message
    assert isinstance(raised.value, PermanentError) and aws.count("ec2", "DescribeInstances") == 1


def test_missing_permission_is_named_and_not_retried(aws, light01, tmp_path):
    import boto3

    iam = aws.client("iam")
    iam.create_user(UserName="reader")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}]}
    iam.put_user_policy(UserName="reader", PolicyName="read-only", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    session = boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    options = AwsOptions(instance=light01.instance_id, region=REGION, api_max_attempts=5)
    aws.clear_calls()
    with enable_iam_authentication(), pytest.raises(AccessDeniedError) as raised:
        lifecycle.export(provider, options, build(ExportOptions, output_dir=tmp_path), session)
    assert "the credentials lack ec2:CreateSnapshots" in str(raised.value)
    assert aws.count("ec2", "CreateSnapshots") == 1


def test_throttling_is_retried_with_backoff(aws, root_raw, make_request, tmp_path):
    snapshot = aws.publish(root_raw)
    aws.fail("ec2", "DescribeSnapshots", "RequestLimitExceeded", "Request limit exceeded.")
    aws.fail("ebs", "GetSnapshotBlock", "RequestThrottledException", "Rate exceeded")

    report = run_migration(make_request(tmp_path / "out", snapshot=snapshot))

    assert report.success and all(f.times == 0 for f in aws.faults)
    assert aws.count("ebs", "GetSnapshotBlock") == aws.published[snapshot] + 1


def test_throttling_that_does_not_stop_says_so(aws, light01, make_request, tmp_path):
    aws.fail("ec2", "DescribeInstances", "RequestLimitExceeded", "Request limit exceeded.", times=None)
    request = make_request(tmp_path / "out", instance=light01.instance_id, api_max_attempts=2)

    with pytest.raises(TransferError, match=r"AWS throttled describing instance i-\w+ in region us-east-1 \(RequestLimitExceeded\)"):
        migration.export_vm(migration.preflight(request))
    assert aws.count("ec2", "DescribeInstances") == 2


def test_block_that_does_not_match_its_checksum(aws, root_raw, make_request, tmp_path):
    snapshot = aws.publish(root_raw, bad_checksum_block=0)
    with pytest.raises(IntegrityError, match=r"block 0 \(bytes 0-524287\) does not match its SHA-256 checksum"):
        run_migration(make_request(tmp_path / "out", snapshot=snapshot))


@pytest.mark.parametrize("source, message", [
    ({}, "give exactly one of instance, ami or snapshot"),
    ({"instance": "i-1", "ami": "ami-12345678"}, "give exactly one of"),
    ({"instance": "i-1", "region": "moon-1"}, "'moon-1' is not an AWS region name"),
    ({"ami": "image-1"}, "'image-1' is not an AWS ami id"),
    ({"snapshot": "snap-12345678", "export_method": "export-image", "bucket": "b"}, "not snapshots"),
    ({"ami": "ami-12345678", "export_method": "export-image"}, "needs an S3 bucket"),
    ({"ami": "ami-12345678", "stop_instance": True}, "stop_instance applies to an instance only"),
])  # fmt: skip
def test_options_are_checked_before_anything_moves(source, message, tmp_path):
    options = AwsOptions(**{"region": REGION, **source})
    with pytest.raises(InvalidInputError, match=message):
        provider.check(options, build(ExportOptions, output_dir=tmp_path))


def test_credentials_of_the_wrong_kind_are_refused():
    with pytest.raises(InvalidInputError, match="must be an AwsLogin .* or a boto3.Session, not dict"):
        make_context(REGION, {"aws_access_key_id": "x"})


def test_an_aws_login_reaches_the_provider(aws, light01, tmp_path):
    """The engine's own credentials type: keys in an AwsLogin (a block builds one) make the session."""
    from hyperexport.providers.aws import AwsLogin

    login = AwsLogin(access_key_id="AKIAFAKEFAKEFAKE0003", secret_access_key="fake-secret", region_name=REGION)
    options = AwsOptions(instance=light01.instance_id, region=REGION, api_max_attempts=3, poll_seconds=0.05)
    result = lifecycle.export(provider, options, ExportOptions(output_dir=tmp_path / "out"), login)
    assert result.disks and make_context(REGION, login).session is login.session()
    lifecycle.cleanup(provider, result, options, login)
    assert "fake-secret" not in repr(login) and "fake-secret" not in login.model_dump_json()
