"""A vCenter that stops answering: the API call fails (retried) after the login's timeout, it never hangs."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from pydantic import SecretStr
from support.vsphere_sim import PASSWORD, USER

from hyperexport.errors import TransferError
from hyperexport.providers.vsphere import VsphereLogin
from hyperexport.providers.vsphere.errors import translated


class StallingProxy:
    """A TCP proxy to vcsim that, once ``stall`` is set, keeps every connection open and forwards nothing."""

    def __init__(self, port: int) -> None:
        self.target, self.stall = port, threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                while self.stall.is_set():
                    time.sleep(0.05)
                sink.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        for s in self.sockets:
            s.close()


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
