"""The sandbox every untrusted-input test works in (sandbox.py)."""

from __future__ import annotations

import secrets

import pytest
from sandbox import Sandbox


@pytest.fixture
def sandbox(prefect_server, tmp_path) -> Sandbox:
    box = Sandbox(tmp_path / "box", f"HOST-MARKER-{secrets.token_hex(12)}|".encode(), prefect_server)
    for directory in (box.host, box.src):
        directory.mkdir(parents=True)
    return box
