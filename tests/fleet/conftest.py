"""The fleet's fixtures: per test module, the session's worker paused, a moto server, and a fleet of workers."""

from __future__ import annotations

import pytest
from support.fleet import Fleet, moto_server, paused


@pytest.fixture(scope="module")
def moto():
    with moto_server() as server:
        yield server


@pytest.fixture(scope="module")
def fleet(stack, moto, tmp_path_factory):
    """Workers of this module's fleet reach moto through their environment; the session's worker is stopped
    meanwhile, so that every run of the module is taken by a fleet worker."""
    with paused(stack.worker):
        yield Fleet(stack.server, tmp_path_factory.mktemp("fleet"), env=moto.env())
