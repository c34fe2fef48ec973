"""A vCenter that stops answering: the API call fails (retried) after the login's timeout, it never hangs."""

from __future__ import annotations

import time

import pytest
from pydantic import SecretStr
from support.vsphere_proxy import StallingProxy
from support.vsphere_sim import PASSWORD, USER

from hyperexport.errors import TransferError
from hyperexport.providers.vsphere import VsphereLogin
from hyperexport.providers.vsphere.errors import translated


def test_a_stalled_vcenter_raises_a_retryable_error_after_the_api_timeout(vcsim):
    proxy = StallingProxy(vcsim.port)
    login = VsphereLogin(host="127.0.0.1", port=proxy.port, user=USER, password=SecretStr(PASSWORD),
                         ssl_context=vcsim.ssl_context(), api_timeout_seconds=1)  # fmt: skip
    try:
        with login.session() as service_instance:
            proxy.stall.set()
            started = time.monotonic()
            with pytest.raises(TransferError) as raised, translated("reading the inventory"):
                service_instance.RetrieveContent().rootFolder.childEntity
            assert time.monotonic() - started < 10
            proxy.stall.clear()
    finally:
        proxy.close()
    assert raised.value.retryable
    assert "the connection to vSphere failed while reading the inventory (TimeoutError); will retry" in str(raised.value)
    assert PASSWORD not in str(raised.value)
