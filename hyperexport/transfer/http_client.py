"""The httpx client for ranged downloads: pooled, no transport retries, proxies from the environment.

httpx ignores ``HTTP(S)_PROXY``/``NO_PROXY`` as soon as a client is given its
own transport, and its own ``NO_PROXY`` reading knows no CIDR blocks; so the
client gets a ``ProxyRouter`` transport (httpx's public ``BaseTransport``) that
picks, per request, a direct ``LargeReadTransport`` or one through the proxy,
by the rules in ``proxy``. With ``trust_env=False`` the environment is not read at
all (no proxies, no ``SSL_CERT_FILE``). Redirects are not followed here:
``HttpRangeSource`` follows them itself, to check where they lead.

httpx logs every request's full URL at INFO (``HTTP Request: GET https://...?sig=...``)
and httpcore logs response headers at DEBUG (a redirect's Location with its
signature): a filter on their loggers reduces every URL in those records to
scheme, host and path before any handler sees them.
"""

from __future__ import annotations

import logging
import ssl
import threading
from typing import Any

import httpx

from ..errors import InvalidInputError
from .large_reads import LargeReadTransport
from .proxy import ProxySettings
from .redact import redact_text, redact_url

_DEFAULT_PORTS = {"http": 80, "https": 443}
_CHATTY_LOGGERS = ("httpx", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy")


class RedactingFilter(logging.Filter):
    """Rewrites a record's message with every URL reduced to scheme://host[:port]/path."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record: leave it to logging's own error path
            return True
        record.msg, record.args = redact_text(message), None
        return True


def _install_log_redaction() -> None:
    for name in _CHATTY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())


_install_log_redaction()


class ProxyRouter(httpx.BaseTransport):
    """Sends each request directly or through the proxy ``settings`` choose for its URL."""

    def __init__(self, settings: ProxySettings, **transport_options: Any) -> None:
        self._settings = settings
        self._options = transport_options
        self._lock = threading.Lock()
        self._transports: dict[str | None, httpx.BaseTransport] = {}

    def _transport(self, proxy: str | None) -> httpx.BaseTransport:
        with self._lock:
            transport = self._transports.get(proxy)
            if transport is None:
                try:
                    transport = LargeReadTransport(proxy=proxy, **self._options)
                except (httpx.InvalidURL, ValueError) as exc:  # socks5://, a malformed proxy URL
                    raise InvalidInputError(
                        f"the proxy {redact_url(proxy or '')} set in the "
                        f"environment (HTTP_PROXY, HTTPS_PROXY or ALL_PROXY) cannot be used: {exc}. Use an "
                        "http:// proxy, or list the host in NO_PROXY."
                    ) from None
                self._transports[proxy] = transport
            return transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        proxy = self._settings.proxy_for(url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme, 0))
        if proxy is None:
            return self._transport(None).handle_request(request)
        try:
            return self._transport(proxy).handle_request(request)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.ProxyError) as exc:
            # Say which hop failed: the user set the proxy in the environment and may not think of it.
            raise type(exc)(
                f"through the proxy {redact_url(proxy)} (from HTTP_PROXY, HTTPS_PROXY or ALL_PROXY; NO_PROXY "
                f"bypasses it): {exc}",
                request=request,
            ) from exc

    def close(self) -> None:
        with self._lock:
            transports, self._transports = list(self._transports.values()), {}
        for transport in transports:
            transport.close()


def make_client(
    *,
    connections: int,
    connect_timeout: float,
    read_timeout: float,
    read_size: int = 256 * 1024,
    verify: bool | str | ssl.SSLContext = True,
    trust_env: bool = True,
) -> httpx.Client:
    """A client for one source's ranged reads (``connections`` pooled connections per route)."""
    settings = ProxySettings.from_env() if trust_env else ProxySettings()
    transport = ProxyRouter(
        settings, verify=verify, trust_env=trust_env, max_connections=connections, read_size=read_size
    )
    timeout = httpx.Timeout(connect=connect_timeout, read=read_timeout, write=read_timeout, pool=None)
    return httpx.Client(transport=transport, timeout=timeout, follow_redirects=False, trust_env=trust_env)
