"""Which redirects an http(s) source follows.

Only to http or https: a ``Location`` naming ``file:``, ``ftp:`` or anything
else is bad input (a server pointing us at the local filesystem), refused at
once. A redirect to another origin (scheme, host or port) is refused unless
allowed, and even then the Authorization header stays behind: credentials
given for one origin are never sent to another.
"""

from __future__ import annotations

import httpx

from ..errors import InvalidInputError
from .redact import redact_url

MAX_REDIRECTS = 10
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: httpx.URL) -> tuple[str, str, int]:
    return url.scheme, url.host.lower(), url.port or _DEFAULT_PORTS.get(url.scheme, 0)


def next_url(name: str, what: str, current: httpx.URL, location: str, first: httpx.URL, *, cross_origin: bool) -> httpx.URL:
    """The URL a redirect from ``current`` to ``location`` leads to, or ``InvalidInputError`` if it may not be followed.

    ``first`` is the URL the source was given: every hop is compared with its origin.
    """
    try:
        target = current.join(location.strip())
    except (httpx.InvalidURL, ValueError, TypeError):
        raise InvalidInputError(f"{name}: {what} was redirected to an invalid URL; use a direct URL to the disk") from None
    if target.scheme not in ("http", "https"):
        raise InvalidInputError(
            f"{name}: {what} was redirected to a {target.scheme or 'scheme-less'}: URL; only http and https "
            "redirects are followed. The server is misconfigured or hostile: use a direct http(s) URL to the disk."
        )
    if not target.host:
        raise InvalidInputError(f"{name}: {what} was redirected to a URL without a host; use a direct URL to the disk")
    if origin(target) != origin(first) and not cross_origin:
        raise InvalidInputError(
            f"{name}: {what} was redirected to another origin ({redact_url(str(target))}); redirects that change "
            "scheme, host or port are refused. Use that URL directly if you trust it, or allow cross-origin "
            "redirects in the transfer options (allow_cross_origin_redirects)."
        )
    return target


def headers_for(target: httpx.URL, first: httpx.URL, headers: dict[str, str]) -> dict[str, str]:
    """``headers`` for a request to ``target``: without Authorization once it left ``first``'s origin."""
    if origin(target) == origin(first):
        return headers
    return {k: v for k, v in headers.items() if k.lower() not in ("authorization", "cookie")}
