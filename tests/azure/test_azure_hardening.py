"""What an answer of Azure cannot make the provider do: send its token elsewhere, lose track of what it made."""

from __future__ import annotations

import pytest
from support.azure_arm import ForeignHost

from hyperexport.errors import InvalidInputError, PermanentError
from hyperexport.migration import export_vm


def test_operation_url_on_another_host_gets_no_request_and_fails_permanently(arm, web01, make_request, tmp_path):
    with ForeignHost(arm.ca) as foreign:
        arm.operations_base = foreign.url
        with pytest.raises(PermanentError) as raised:
            export_vm(make_request(tmp_path / "out", vm="web01"), arm.login())
    assert foreign.requests == []
    assert isinstance(raised.value, InvalidInputError)
    message = str(raised.value)
    assert f"pointed a request at another host, {foreign.url.removeprefix('https://')}; it was not sent" in message
    assert "Check resource_manager_endpoint" in message
