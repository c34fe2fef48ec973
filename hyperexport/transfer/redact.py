"""Keep URL secrets (presigned S3 signatures, Azure SAS tokens, user:password) out of messages."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_URL_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def redact_url(url: str) -> str:
    """``https://host/path?sig=...`` -> ``https://host/path?<redacted>``; credentials in the netloc dropped."""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.hostname or ""
    if ":" in netloc:  # IPv6 literal
        netloc = f"[{netloc}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port:
        netloc = f"{netloc}:{port}"
    query = "<redacted>" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact_text(text: str, *secrets: str) -> str:
    """Redact every URL in ``text`` and every literal occurrence of ``secrets``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return _URL_RE.sub(lambda m: redact_url(m.group(0)), text)
