"""An httpx transport whose connections read the socket ``read_size`` bytes at a time.

httpcore reads 64 KiB per ``recv``, and the per-read Python work in h11 then
caps one process at a few hundred MiB/s. httpcore's public API lets a
connection pool take its own ``network_backend``: ``LargeReadBackend`` wraps
the standard one so each read asks for up to ``read_size`` bytes (256 KiB by
default), the same bytes with a quarter of the overhead. ``LargeReadTransport``
is the httpx ``BaseTransport`` over such a pool (direct, or through an http(s)
proxy with ``httpcore.HTTPProxy``); it does what ``httpx.HTTPTransport`` does
with a pool, using public names of both libraries only.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
import httpx


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

    # Socket options are typed by an httpcore-internal alias; Iterable[Any] takes whatever it allows.
    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _LargeReadStream(stream, self._read_size)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        return _LargeReadStream(self._inner.connect_unix_socket(path, timeout, socket_options), self._read_size)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    """httpcore's exceptions as httpx's classes of the same name (both libraries name them alike)."""
    try:
        yield
    except (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError, httpcore.ProxyError,
            httpcore.UnsupportedProtocol) as exc:  # fmt: skip
        mapped = getattr(httpx, type(exc).__name__, httpx.TransportError)
        raise mapped(str(exc)) from exc


class _ResponseStream(httpx.SyncByteStream):
    def __init__(self, stream) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _httpx_errors():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class LargeReadTransport(httpx.BaseTransport):
    """``proxy``: an http(s) proxy URL or None. Raises ``ValueError`` for any other proxy scheme."""

    def __init__(
        self,
        *,
        proxy: str | None,
        verify: bool | str | ssl.SSLContext,
        trust_env: bool,
        max_connections: int,
        read_size: int,
    ) -> None:
        ssl_context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify, trust_env=trust_env)
        common: dict[str, Any] = dict(
            ssl_context=ssl_context,
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            retries=0,
            network_backend=LargeReadBackend(httpcore.SyncBackend(), read_size),
        )
        if proxy is None:
            self._pool: httpcore.ConnectionPool | httpcore.HTTPProxy = httpcore.ConnectionPool(**common)
            return
        spec = httpx.Proxy(proxy)
        if spec.url.scheme not in ("http", "https"):
            raise ValueError(f"proxy scheme {spec.url.scheme!r} is not supported (http and https are)")
        self._pool = httpcore.HTTPProxy(
            proxy_url=httpcore.URL(
                scheme=spec.url.raw_scheme, host=spec.url.raw_host, port=spec.url.port, target=spec.url.raw_path
            ),
            proxy_auth=spec.raw_auth,
            proxy_headers=spec.headers.raw,
            proxy_ssl_context=spec.ssl_context,
            **common,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors():
            answer = self._pool.handle_request(core_request)
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_ResponseStream(answer.stream),
            extensions=answer.extensions,
        )

    def close(self) -> None:
        self._pool.close()
