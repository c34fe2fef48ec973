"""Prefect's temporary API server for a command-line run with no server configured, started before Prefect is
imported.

Importing Prefect takes seconds, and so does the server's own start-up: started first, the server comes up
while the command imports Prefect and checks the request, instead of after. It is the server Prefect itself
would start for the run (uvicorn on Prefect's ``create_app``, UI off, marked ephemeral), with three differences:

- it runs in a session of its own, so Ctrl-C reaches only the command (in the command's process group it died
  while the flow still needed it to record the interruption, and the command ended with tracebacks minutes
  later), and it is sent SIGTERM if the command dies, even by SIGKILL;
- ``PREFECT_API_URL`` names it for the run, so every Prefect client of the process uses it;
- the app is ``deployments/server_app.py``'s: a request the server answers 503 ("database is locked") is run
  again within the server after milliseconds, instead of by Prefect's client after its 2 s back-off.

Nothing here imports Prefect.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

from . import cancel

_PR_SET_PDEATHSIG = 1
_SERVER_ENV = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}


def _die_with_parent() -> None:
    """In the server's process before exec: SIGTERM when the command that started it dies (even by SIGKILL)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def configured_api_url(environ: dict[str, str] | None = None) -> str | None:
    """``PREFECT_API_URL`` from the environment or from the active Prefect profile, as Prefect reads them."""
    environ = dict(os.environ if environ is None else environ)
    if environ.get("PREFECT_API_URL"):
        return environ["PREFECT_API_URL"]
    home = Path(environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    path = Path(environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    try:
        profiles = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    active = environ.get("PREFECT_PROFILE") or profiles.get("active") or "ephemeral"
    value = (profiles.get("profiles") or {}).get(active, {}).get("PREFECT_API_URL")
    return value or None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TemporaryServer:
    def __init__(self) -> None:
        self.port = _free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.process: subprocess.Popen | None = None

    def start(self) -> "TemporaryServer":
        spec = importlib.util.find_spec("prefect")
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("Prefect is not installed: the Prefect API server cannot start")
        app_dir = Path(next(iter(spec.submodule_search_locations))).parent
        self.process = subprocess.Popen(  # noqa: PLW1509 - preexec_fn runs before any thread of ours touches the child
            [sys.executable, "-m", "uvicorn", "--app-dir", str(app_dir), "--factory",
             "deployments.server_app:create_app", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "error", "--lifespan", "on"],
            env={**os.environ, **_SERVER_ENV}, stdin=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=_die_with_parent,
        )  # fmt: skip
        return self

    def wait_ready(self, timeout_s: float) -> None:
        """Until the API answers its health check; ``RuntimeError`` naming the Prefect API server otherwise."""
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"The temporary Prefect API server exited with status {self.process.returncode} before it answered."
                )
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            cancel.raise_if_cancelled()
            if time.monotonic() > deadline:
                raise RuntimeError(f"Timed out after {timeout_s:.0f} s waiting for the temporary Prefect API server.")
            time.sleep(0.1)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
