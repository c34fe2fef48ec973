"""The temporary Prefect server of a command-line run without PREFECT_API_URL, out of the terminal's reach.

Prefect starts that server (``SubprocessASGIServer``) in the command's own
process group, so Ctrl-C reaches it too: it dies while the flow still needs it
to record the interruption, and the command ends with tracebacks minutes
later. Started here first, in a session of its own (and told to stop if the
command dies), it is the instance every Prefect client of the process uses,
and it stops at exit, after the flow run is recorded.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from typing import Any

import prefect
from prefect.server.api.server import SubprocessASGIServer
from prefect.settings import PREFECT_API_URL, get_current_settings

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the server's process before exec: SIGTERM when the command that started it dies (even by SIGKILL)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class DetachedServer(SubprocessASGIServer):
    """Prefect's temporary server, started as Prefect does (same command and environment) in a new session."""

    def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
        server_env = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
        return subprocess.Popen(  # noqa: PLW1509 - preexec_fn runs before any thread of ours touches the child
            args=[
                sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent),
                "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(self.port),
                "--log-level", "error", "--lifespan", "on",
            ],
            env={**os.environ, **server_env, **get_current_settings().to_environment_variables(exclude_unset=True)},
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )


def start_if_needed() -> DetachedServer | None:
    """Without an API URL, start the temporary server now (detached); None when a server is configured."""
    if PREFECT_API_URL.value():
        return None
    server = DetachedServer()  # registered as the process's one temporary server: Prefect's clients reuse it
    server.start()
    return server
