"""A toy cloud for the toy provider (tests/support/toy_plugin): VMs whose disks are raw files, behind basic auth.

    GET    /vms/<vm>                      the VM: {"name", "cpu", "disks": [file names]}
    POST   /vms/<vm>/exports              {"run_id"} -> a new export {"id", "run_id", "vm", "disks": [{name, size, url}]}
    GET    /exports?run_id=<id>           the exports of a run
    DELETE /exports/<id>                  remove an export (404 once gone)

The disks' bytes are served by a FaultServer (ranged GETs, the same credentials) under /exports/<id>/<name>.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from .fault_server import FaultServer


class ToyCloud:
    def __init__(self, user: str = "migrator", password: str = "toy-password-never-log-this") -> None:
        self.user, self.password = user, password
        self.vms: dict[str, list[Path]] = {}
        self.exports: dict[str, dict] = {}
        self.fail_exports_after_create = False  # the export exists, then describing it answers 500
        self._lock = threading.Lock()
        self.disks = FaultServer()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.cloud = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "ToyCloud":
        self.disks.start()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.disks.stop()

    def add_vm(self, name: str, disks: list[Path]) -> None:
        self.vms[name] = disks

    def authorized(self, header: str | None) -> bool:
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return header == f"Basic {token}"

    def create_export(self, vm: str, run_id: str) -> dict:
        export_id = f"exp-{uuid.uuid4().hex[:12]}"
        disks = []
        for path in self.vms[vm]:
            url = self.disks.add_file(f"/exports/{export_id}/{path.name}", path, auth=(self.user, self.password))
            disks.append({"name": path.name, "size": path.stat().st_size, "url": url})
        export = {"id": export_id, "run_id": run_id, "vm": vm, "disks": disks}
        with self._lock:
            self.exports[export_id] = export
        return export


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass

    @property
    def cloud(self) -> ToyCloud:
        return self.server.cloud  # type: ignore[attr-defined]

    def _reply(self, status: int, body: object = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str) -> None:
        if not self.cloud.authorized(self.headers.get("Authorization")):
            return self._reply(401, {"error": "authentication required"})
        parts = urlsplit(self.path)
        segments = [s for s in parts.path.split("/") if s]
        if method == "GET" and len(segments) == 2 and segments[0] == "vms":
            disks = self.cloud.vms.get(segments[1])
            if disks is None:
                return self._reply(404, {"error": f"no VM {segments[1]}"})
            return self._reply(200, {"name": segments[1], "cpu": 2, "disks": [p.name for p in disks]})
        if method == "POST" and len(segments) == 3 and segments[0] == "vms" and segments[2] == "exports":
            if segments[1] not in self.cloud.vms:
                return self._reply(404, {"error": f"no VM {segments[1]}"})
            length = int(self.headers.get("Content-Length") or 0)
            run_id = json.loads(self.rfile.read(length) or b"{}").get("run_id", "")
            return self._reply(201, self.cloud.create_export(segments[1], run_id))
        if method == "GET" and segments == ["exports"]:
            run_id = parse_qs(parts.query).get("run_id", [""])[0]
            return self._reply(200, [e for e in self.cloud.exports.values() if e["run_id"] == run_id])
        if method == "GET" and len(segments) == 2 and segments[0] == "exports":
            if self.cloud.fail_exports_after_create:
                return self._reply(500, {"error": "injected by the test"})
            export = self.cloud.exports.get(segments[1])
            return self._reply(200, export) if export else self._reply(404, {"error": "no such export"})
        if method == "DELETE" and len(segments) == 2 and segments[0] == "exports":
            with self.cloud._lock:
                gone = self.cloud.exports.pop(segments[1], None)
            return self._reply(204) if gone else self._reply(404, {"error": "no such export"})
        return self._reply(404, {"error": "no such route"})

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")
