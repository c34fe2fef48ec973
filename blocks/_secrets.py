"""What every hyperexport credentials block shares: its secrets can be listed, so they can be scrubbed.

A secret must never reach a log line, an artifact, a report or an exception
text. Blocks keep secrets as ``SecretStr`` (the API and the UI mask them);
when an SDK raises while a block is in use, ``scrubbed`` removes every secret
value of that block from the message before it goes anywhere.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr

MASK = "********"


def secret_values(model: BaseModel) -> list[str]:
    """Every secret value held by ``model`` and its nested models (longest first, empty ones left out)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, (SecretStr, SecretBytes)):
            raw = value.get_secret_value()
            raw = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
            if raw:
                found.extend(_pieces(raw))
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name, None))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    walk(model)
    return sorted(set(found), key=len, reverse=True)


_JSON_SECRET_KEYS = ("private_key", "private_key_id", "client_secret", "refresh_token")


def _pieces(raw: str) -> list[str]:
    """A secret and the parts of it that leak on their own: each long line and, in a JSON key file, the
    secret values decoded (a PEM key in JSON has its line breaks escaped)."""
    pieces = [raw, *(line.strip() for line in raw.splitlines() if len(line.strip()) >= 12)]
    try:
        data = json.loads(raw)
    except ValueError:
        return pieces
    if isinstance(data, dict):
        for key in _JSON_SECRET_KEYS:
            if isinstance(data.get(key), str) and data[key]:
                pieces.extend(_pieces(data[key]))
    return pieces


def scrubbed(text: str, model: BaseModel) -> str:
    """``text`` with every secret value of ``model`` replaced by the mask."""
    for secret in secret_values(model):
        text = text.replace(secret, MASK)
    return text


def pem_or_path(value: str | None) -> dict[str, str]:
    """A CA bundle given as PEM text or as a path on the worker, as ``ssl.create_default_context`` keywords."""
    if not value:
        return {}
    return {"cadata": value} if "-----BEGIN" in value else {"cafile": value}
