"""The Hyper-V credentials block and the login it hands the engine: SMB from the WinRM login unless given, both
passwords masked by the API."""

from __future__ import annotations

import json

import pytest

from support.hyperv_lab import SECRETS, WINRM_PASSWORD, WINRM_USER


def test_the_smb_login_defaults_to_the_winrm_one():
    from blocks.hyperv import HypervCredentials

    login = HypervCredentials(host="hv01.corp.example", user=WINRM_USER, password=WINRM_PASSWORD).engine_credentials()
    assert login.endpoint == "https://hv01.corp.example:5986/wsman" and login.transport == "ntlm" and login.verify_tls
    assert (login.smb_username, login.smb_secret(), login.smb_port, login.smb_encrypt) == (WINRM_USER, WINRM_PASSWORD, 445, True)
    assert WINRM_PASSWORD not in repr(login)


def test_both_passwords_come_back_masked_from_the_api(hyperv_block):
    from prefect.client.orchestration import get_client

    from blocks import credentials_for
    from blocks.hyperv import HypervCredentials

    with get_client(sync_client=True) as client:
        document = client.read_block_document_by_name(hyperv_block, HypervCredentials.get_block_type_slug(), include_secrets=False)
    assert document.data["password"] == document.data["smb_password"] == "********"
    text = json.dumps(document.data, default=str)
    assert not [s for s in SECRETS if s in text]
    login = credentials_for("hyperv", hyperv_block)
    assert login.smb_secret() != login.password.get_secret_value() and login.transport == "basic"


def test_basic_over_plain_http_is_refused_unless_the_lab_opt_in_is_set():
    from blocks.hyperv import HypervCredentials

    from hyperexport.errors import InvalidInputError

    block = HypervCredentials(host="127.0.0.1", user=WINRM_USER, password=WINRM_PASSWORD, transport="basic", use_tls=False)
    with pytest.raises(InvalidInputError) as raised:
        block.get_client()
    assert "password in clear: turn on the credentials block's use_tls" in str(raised.value)
    assert raised.value.field == "credentials_block" and WINRM_PASSWORD not in str(raised.value)
    assert block.model_copy(update={"allow_insecure_basic": True}).get_client() is not None
    assert HypervCredentials(host="127.0.0.1", user=WINRM_USER, password=WINRM_PASSWORD, transport="basic").get_client()
