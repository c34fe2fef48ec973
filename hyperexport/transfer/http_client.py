"""An httpx client tuned for bulk ranged downloads.

httpcore reads the socket 64 KiB at a time, and the per-read Python work in
h11 then caps one process at a few hundred MiB/s. ``LargeReadBackend`` wraps
httpcore's network backend so each socket read asks for up to ``read_size``
bytes (256 KiB by default): the same bytes with a sixteenth of the overhead.
It is installed on the transport's connection pool; if a future httpx moves
that attribute, the client still works, only slower (``is_tuned`` tells).
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

import httpcore
import httpx

log = logging.getLogger(__name__)


class _LargeReadStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, read_size: int) -> None:
        self._inner = inner
        self._read_size = read_size

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max(max_bytes, self._read_size), timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _LargeReadStream(self._inner.start_tls(ssl_context, server_hostname, timeout), self._read_size)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class LargeReadBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend, read_size: int) -> None:
        self._inner = inner
        self._read_size = read_size

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # type: ignore[override]
        stream = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _LargeReadStream(stream, self._read_size)

    def connect_unix_socket(self, path, timeout=None, socket_options=None):  # type: ignore[override]
        return _LargeReadStream(self._inner.connect_unix_socket(path, timeout, socket_options), self._read_size)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def make_client(
    *,
    connections: int,
    connect_timeout: float,
    read_timeout: float,
    read_size: int,
    verify: bool | ssl.SSLContext = True,
    follow_redirects: bool = True,
) -> httpx.Client:
    transport = httpx.HTTPTransport(
        verify=verify,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        retries=0,
    )
    pool = getattr(transport, "_pool", None)
    inner = getattr(pool, "_network_backend", None)
    if isinstance(inner, httpcore.NetworkBackend):
        pool._network_backend = LargeReadBackend(inner, read_size)  # type: ignore[union-attr]
    else:  # pragma: no cover - depends on the httpx version
        log.warning("httpx internals changed: ranged reads use 64 KiB socket reads (slower)")
    timeout = httpx.Timeout(connect=connect_timeout, read=read_timeout, write=read_timeout, pool=None)
    return httpx.Client(transport=transport, timeout=timeout, follow_redirects=follow_redirects)


def is_tuned(client: httpx.Client) -> bool:
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    return isinstance(getattr(pool, "_network_backend", None), LargeReadBackend)
