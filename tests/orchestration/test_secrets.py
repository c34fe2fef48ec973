"""Credentials blocks: secrets masked by the API, and absent from every log line and artifact of a run that used them."""

from __future__ import annotations

import json

import pytest
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    LogFilter,
    LogFilterFlowRunId,
)
from support.prefect_stack import client, task_runs_of, wait_for_state

from blocks import check_credentials_block, credentials_for, scrubbed
from blocks.aws import AwsMigrationCredentials
from blocks.azure import AzureServicePrincipal
from blocks.gcp import GcpServiceAccount
from blocks.hyperv import HypervCredentials
from blocks.vsphere import VsphereCredentials
from hyperexport.errors import AccessDeniedError, InvalidInputError, TransferError

# Known fake secrets: none of them may come back from the API or show up in a run.
AWS_SECRET = "fakeSecretAccessKey+Zq81/never-log-this"
AWS_TOKEN = "FakeSessionToken//Zq81never-log-this"
EXTERNAL_ID = "fake-external-id-never-log-this"
AZURE_SECRET = "fake~azure~client~secret~never-log-this"
GCP_KEY = "-----BEGIN PRIVATE KEY-----\nMIIfakefakefakeNEVERLOGTHIS\n-----END PRIVATE KEY-----\n"
VSPHERE_PASSWORD = "fake-vsphere-password-never-log-this"
HYPERV_PASSWORD = "fake-hyperv-password-never-log-this"
SECRETS = [AWS_SECRET, AWS_TOKEN, EXTERNAL_ID, AZURE_SECRET, "MIIfakefakefakeNEVERLOGTHIS", VSPHERE_PASSWORD, HYPERV_PASSWORD]

GCP_INFO = json.dumps({
    "type": "service_account", "project_id": "fake-project", "private_key_id": "0" * 40, "private_key": GCP_KEY,
    "client_email": "migrator@fake-project.iam.gserviceaccount.com", "token_uri": "http://127.0.0.1:9/token",
})


def _blocks() -> dict[str, tuple]:
    """name -> (block, its secret field names)"""
    return {
        "test-aws": (AwsMigrationCredentials(
            aws_access_key_id="AKIAFAKEFAKEFAKE0001", aws_secret_access_key=AWS_SECRET, aws_session_token=AWS_TOKEN,
            region_name="us-east-1",
        ), ["aws_secret_access_key", "aws_session_token"]),
        "test-aws-role": (AwsMigrationCredentials(
            aws_access_key_id="AKIAFAKEFAKEFAKE0002", aws_secret_access_key=AWS_SECRET, region_name="us-east-1",
            role_arn="arn:aws:iam::123456789012:role/migrator", external_id=EXTERNAL_ID,
            aws_client_parameters={"endpoint_url": "http://127.0.0.1:9"},
        ), ["aws_secret_access_key", "external_id"]),
        "test-azure": (AzureServicePrincipal(
            tenant_id="00000000-0000-0000-0000-000000000000", client_id="11111111-1111-1111-1111-111111111111",
            client_secret=AZURE_SECRET, subscription_id="22222222-2222-2222-2222-222222222222",
        ), ["client_secret"]),
        "test-gcp": (GcpServiceAccount(service_account_info=GCP_INFO), ["service_account_info"]),
        "test-vsphere": (VsphereCredentials(host="127.0.0.1", port=9, user="migrator@vsphere.local", password=VSPHERE_PASSWORD),
                         ["password"]),
        "test-hyperv": (HypervCredentials(host="127.0.0.1", port=9, user="CORP\\migrator", password=HYPERV_PASSWORD,
                                          transport="ntlm"), ["password"]),
    }


@pytest.fixture(scope="module")
def saved_blocks(stack):
    blocks = _blocks()
    for name, (block, _) in blocks.items():
        block.save(name, overwrite=True)
    return blocks


def test_block_secrets_come_back_masked_from_the_api(saved_blocks):
    with client() as c:
        for name, (block, secret_fields) in saved_blocks.items():
            document = c.read_block_document_by_name(name, block.get_block_type_slug(), include_secrets=False)
            for field in secret_fields:
                assert document.data[field] == "********", f"{name}.{field} is not masked: {document.data[field]!r}"
            text = json.dumps(document.data, default=str)
            assert not [s for s in SECRETS if s in text], f"{name} leaks a secret through the API: {text}"
    assert check_credentials_block("gcp", "test-gcp") is GcpServiceAccount
    assert saved_blocks["test-vsphere"][0].verify_tls, "TLS verification must be on by default"


def test_sdk_errors_are_scrubbed_of_the_blocks_secrets(saved_blocks, monkeypatch):
    def leaky(self):
        raise RuntimeError(f"login refused for password {self.password.get_secret_value()}")

    monkeypatch.setattr(VsphereCredentials, "engine_credentials", leaky)
    with pytest.raises(AccessDeniedError) as raised:
        credentials_for("vsphere", "test-vsphere")
    assert VSPHERE_PASSWORD not in str(raised.value) and "********" in str(raised.value)
    assert "test-vsphere" in str(raised.value)
    # The assumed role's STS call fails (nothing listens on port 9): a network error, retryable, no secret in it.
    with pytest.raises(TransferError) as raised:
        credentials_for("aws", "test-aws-role")
    assert "test-aws-role" in str(raised.value) and not [s for s in SECRETS if s in str(raised.value)]
    assert scrubbed(f"key {GCP_KEY}", saved_blocks["test-gcp"][0]).count("NEVERLOGTHIS") == 0
    with pytest.raises(ValueError) as bad:
        GcpServiceAccount(service_account_info='{"type": "service_account", "private_key": "' + GCP_KEY.replace("\n", "") + '"}')
    assert "NEVERLOGTHIS" not in str(bad.value) and "lacks client_email, token_uri" in str(bad.value)
    with pytest.raises(InvalidInputError, match="does not exist for provider azure.*existing azure credentials blocks: (.*, )?test-azure$"):
        check_credentials_block("azure", "test-azur")


def test_no_secret_in_the_logs_or_artifacts_of_runs_that_used_the_blocks(saved_blocks, stack, tmp_path):
    # AWS requests go to a closed local port: the runs fail, through the provider and the credentials hand-off.
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"}
    runs = []
    for block in ("test-aws", "test-aws-role"):
        request = {
            "provider": "aws", "credentials_block": block,
            "source": {"snapshot": "snap-0123456789abcdef0", "region": "us-east-1", "api_max_attempts": 1},
            "export": {"output_dir": str(tmp_path / block)}, "converter": "qemu-img",
        }
        from prefect.deployments import run_deployment

        runs.append(run_deployment("migrate-vm/migrate-vm", parameters={"request": request}, timeout=0, job_variables={"env": env}))
    finished = [wait_for_state(run.id, timeout=180) for run in runs]
    assert all(run.state.is_final() for run in finished)

    ids = [run.id for run in runs]
    with client() as c:
        logs = c.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)), limit=200)
        artifacts = c.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids)), limit=200)
    assert logs, "the runs logged nothing: nothing was scanned"
    texts = [log.message for log in logs]
    texts += [json.dumps(a.model_dump(mode="json")) for a in artifacts]
    texts += [run.state.message or "" for run in finished]
    texts += [run.state.message or "" for run in task_runs_of(*ids) if run.state]
    texts.append(stack.worker.log.read_text(errors="replace"))  # the flow runs' own output, streamed by the worker
    for secret in SECRETS:
        assert not [t for t in texts if secret in t], f"a secret value ({secret[:8]}…) leaked into a run's logs or artifacts"
    # The runs did reach the blocks: their names are in the logs, not their contents.
    assert any("test-aws" in t for t in texts)
