"""Fixtures for the transfer engine tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:  # "support" lives in tests/, which pytest puts on sys.path anyway
    sys.path.insert(0, str(_TESTS))

from support.fault_server import FaultServer  # noqa: E402


@pytest.fixture
def fault_server():
    with FaultServer() as server:
        yield server


@pytest.fixture
def payload() -> bytes:
    """3 MiB of incompressible data with a run of zeros in the middle."""
    block = os.urandom(256 * 1024)
    return block * 5 + bytes(512 * 1024) + block[::-1] * 5
