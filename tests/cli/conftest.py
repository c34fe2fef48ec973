"""The command line as users run it: a real `hyperexport` subprocess."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest



@pytest.fixture(scope="session")
def hyperexport() -> str:
    """The installed console script."""
    return str(Path(sys.executable).with_name("hyperexport"))


@pytest.fixture(scope="module")
def embedded_env(tmp_path_factory) -> dict[str, str]:
    """No PREFECT_API_URL: the command starts its own temporary server (with the user's defaults: the session's
    analytics switch is removed, so the command's own default is what counts)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_SERVER_ANALYTICS_ENABLED")}
    env["PREFECT_HOME"] = str(tmp_path_factory.mktemp("embedded-prefect-home"))
    env["PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"] = "true"
    return env
