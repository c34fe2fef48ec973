"""Converter tests: a clean cancel flag and a private accel cache for each test."""

from __future__ import annotations

import pytest

from hyperexport import cancel


@pytest.fixture(autouse=True)
def fresh_run_state(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    cancel.reset()
    yield
    cancel.reset()
