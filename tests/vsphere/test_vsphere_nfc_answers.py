"""How NfcFileSource takes the NFC server's refusals: an ended lease is retried, a refusal is not."""

from __future__ import annotations

import http.server
import ssl
import threading

import pytest
from pydantic import SecretStr

from hyperexport.errors import AccessDeniedError, TransferError
from hyperexport.providers.vsphere import VsphereLogin
from hyperexport.providers.vsphere.nfc import NfcFileSource


@pytest.fixture
def nfc_answering():
    """``nfc_answering(status)``: the URL of a local server answering every request with ``status``."""
    servers = []

    def serve(status: int) -> str:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_HEAD

            def log_message(self, *args) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/nfc/lease-1/disk-0.vmdk"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def _source(url: str) -> NfcFileSource:
    login = VsphereLogin(host="127.0.0.1", user="u", password=SecretStr("p"), ssl_context=ssl.create_default_context())
    return NfcFileSource(url, "disk-0 of VM vm-7", login, max_size=2**30)


def test_an_ended_lease_is_retried(nfc_answering):
    source = _source(nfc_answering(404))
    with pytest.raises(TransferError) as raised:
        list(source.read_range(0, 10))
    assert raised.value.retryable
    assert str(raised.value) == "disk-0 of VM vm-7: the lease's device URL is gone (the lease ended or timed out); will retry"
    source.close()


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_download_is_not_retried(nfc_answering, status):
    source = _source(nfc_answering(status))
    with pytest.raises(AccessDeniedError) as raised:
        source.describe()
    assert not raised.value.retryable and raised.value.field == "credentials_block"
    assert f"the NFC server refused the download ({status}); the user needs the privilege VApp.Export" in str(raised.value)
    source.close()


def test_close_closes_the_http_client(nfc_answering):
    source = _source(nfc_answering(404))
    source.close()
    with pytest.raises(RuntimeError, match="client has been closed"):
        source.describe()
