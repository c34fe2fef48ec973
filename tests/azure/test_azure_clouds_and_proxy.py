"""Sovereign clouds and explicit endpoints in the login, and HTTPS_PROXY/NO_PROXY honoured by every Azure call
and every SAS download."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from support.azure_proxy import ForwardProxy
from support.migrate import assert_identical

from hyperexport.migration import run_migration
from hyperexport.providers.azure import AzureLogin

BASE = {"tenant_id": "t1", "client_id": "c1", "client_secret": "s", "subscription_id": "sub-1"}


@pytest.mark.parametrize(("cloud", "arm", "authority", "scope"), [
    ("public", "https://management.azure.com", "https://login.microsoftonline.com", "https://management.core.windows.net/.default"),
    ("china", "https://management.chinacloudapi.cn", "https://login.chinacloudapi.cn", "https://management.core.chinacloudapi.cn/.default"),
    ("usgov", "https://management.usgovcloudapi.net", "https://login.microsoftonline.us", "https://management.core.usgovcloudapi.net/.default"),
])  # fmt: skip
def test_named_clouds_have_their_endpoints(cloud, arm, authority, scope):
    login = AzureLogin(**BASE, cloud=cloud)
    assert (login.arm_endpoint, login.authority, login.scope) == (arm, authority, scope)


def test_explicit_endpoints_win_and_must_be_https():
    login = AzureLogin(**BASE, cloud="usgov", resource_manager_endpoint="https://arm.example.internal/", authority_host="https://login.example.internal")
    assert (login.arm_endpoint, login.authority, login.scope) == (
        "https://arm.example.internal", "https://login.example.internal", "https://arm.example.internal/.default")
    with pytest.raises(ValidationError, match="resource_manager_endpoint must be an https:// URL"):
        AzureLogin(**BASE, resource_manager_endpoint="http://arm.example.internal")


def test_the_block_hands_its_cloud_and_endpoints_to_the_engine():
    from blocks.azure import AzureServicePrincipal

    block = AzureServicePrincipal(**BASE, cloud="china", ca_bundle="/etc/ssl/private-ca.pem")
    login = block.engine_credentials()
    assert isinstance(login, AzureLogin) and login.arm_endpoint == "https://management.chinacloudapi.cn"
    assert login.connection_kwargs() == {"connection_verify": "/etc/ssl/private-ca.pem"}
    assert "client_secret=SecretStr('**********')" in repr(login)


def test_every_azure_call_and_the_download_go_through_https_proxy(arm, web01, os_raw, data_raw, make_request, tmp_path, monkeypatch):
    with ForwardProxy() as proxy:
        for name in ("HTTPS_PROXY", "HTTP_PROXY"):
            monkeypatch.setenv(name, proxy.url)
        monkeypatch.setenv("NO_PROXY", "")
        report = run_migration(make_request(tmp_path / "out", vm="web01"), credentials=arm.login())
    assert report.success
    for raw, output in zip((os_raw, data_raw), report.conversion.converted_files):
        assert_identical(raw, "raw", output)
    arm_target, blob_target = f"127.0.0.1:{arm.port}", f"127.0.0.1:{arm.azurite.proxy.port}"
    assert proxy.seen[arm_target] >= 1, proxy.seen  # Azure AD and Resource Manager, tunnelled
    assert proxy.seen[blob_target] >= 4, proxy.seen  # the SAS reads


def test_no_proxy_bypasses_it(arm, web01, make_request, tmp_path, monkeypatch):
    with ForwardProxy() as proxy:
        for name in ("HTTPS_PROXY", "HTTP_PROXY"):
            monkeypatch.setenv(name, proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        report = run_migration(make_request(tmp_path / "out", vm="web01"), credentials=arm.login())
    assert report.success and sum(proxy.seen.values()) == 0, proxy.seen
