"""Keep URL secrets (presigned S3 signatures, Azure SAS tokens, user:password) out of messages.

What may be shown of a URL is ``scheme://host[:port]/path``: the query string
(where presigned and SAS URLs carry their signatures) and the userinfo are
dropped, not masked, so that nothing of them reaches a log, an exception, a
result or a journal.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

_URL_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def _netloc(parts) -> str:
    netloc = parts.hostname or ""
    if ":" in netloc:  # IPv6 literal
        netloc = f"[{netloc}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{netloc}:{port}" if port else netloc


def redact_url(url: str) -> str:
    """``https://user:pw@host:8443/path?sig=...#frag`` -> ``https://host:8443/path``."""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return "<unparseable URL>"
    return urlunsplit((parts.scheme, _netloc(parts), parts.path, "", ""))


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """``(url without userinfo, user, password)``; user and password percent-decoded, None when absent."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None, None
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return urlunsplit((parts.scheme, _netloc(parts), parts.path, parts.query, parts.fragment)), user, password


def redact_text(text: str, *secrets: str | None) -> str:
    """Redact every URL in ``text`` and every literal occurrence of ``secrets``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return _URL_RE.sub(lambda m: redact_url(m.group(0)), text)
