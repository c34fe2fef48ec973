"""The gcp provider's options as the tests give them: the fake's project and zone, the emulator's bucket."""

from __future__ import annotations

from support.gcp_compute import PROJECT, ZONE
from support.gcp_storage import BUCKET


def source(**extra) -> dict:
    """Provider options for the fakes, polling every 10 ms."""
    return {"zone": ZONE, "project": PROJECT, "bucket": BUCKET, "poll_seconds": 0.01, **extra}


def key_secrets(key_info: dict) -> list[str]:
    """What of the key must never show: the private key, its lines, its id."""
    lines = [line for line in key_info["private_key"].splitlines() if len(line) > 20]
    return [key_info["private_key_id"], *lines]
