"""gcp-storage-emulator on 127.0.0.1 (a subprocess, in memory), and google-cloud-storage pointed at it.

Its objects carry the crc32c and md5Hash Cloud Storage computes (base64, big-endian), a generation, and
ranged ``alt=media`` reads answer 206 with a Content-Range, as Cloud Storage does.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

from support.procwatch import die_with_parent

import requests

#: The bucket of the tests' exports (created with the emulator).
BUCKET = "hx-exports"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class GcsEmulator:
    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._proc: subprocess.Popen | None = None
        self._log = None

    def __enter__(self) -> Self:
        binary = Path(sys.executable).with_name("gcp-storage-emulator")
        self._log = open(self.log_path, "wb")
        self._proc = subprocess.Popen(
            [str(binary), "start", "--host", "127.0.0.1", "--port", str(self.port), "--in-memory"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent,
            env={k: v for k, v in os.environ.items() if k != "STORAGE_EMULATOR_HOST"},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"gcp-storage-emulator exited: {self.log_path.read_text()[-2000:]}")
            try:
                requests.get(f"{self.endpoint}/storage/v1/b", timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.1)
        self.__exit__(None, None, None)
        raise RuntimeError("gcp-storage-emulator did not start within 30 s")

    def __exit__(self, *exc) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._log is not None:
            self._log.close()

    def client(self, project: str):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(project=project, credentials=AnonymousCredentials(),
                              client_options={"api_endpoint": self.endpoint})  # fmt: skip
