"""A local WinRM server for the hyperv tests: WS-Management's SOAP exchange as pywinrm speaks it (Create shell,
Command, Receive, Signal, Delete), HTTP basic authentication, commands run by a FakeHost (hyperv_host.py).

Every response is the envelope Windows sends (Action, MessageID, RelatesTo; the shell id as a Selector; the
streams base64 with the CommandState Done and the exit code). ``auth_failures`` counts refused logins.
"""

from __future__ import annotations

import base64
import socket
import threading
import uuid
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

from .hyperv_host import FakeHost

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
}
SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer"


def _envelope(action: str, relates_to: str, body: str) -> bytes:
    return (
        f'<s:Envelope xmlns:s="{NS["s"]}" xmlns:a="{NS["a"]}" xmlns:w="{NS["w"]}" xmlns:rsp="{NS["rsp"]}" '
        f'xmlns:x="{TRANSFER}"><s:Header><a:Action>{action}</a:Action><a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>'
        f"<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
        f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo></s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode("utf-8")


class WinrmServer:
    def __init__(self, host: FakeHost, user: str, password: str, log: Path) -> None:
        self.host, self.user, self.password, self.log_path = host, user, password, log
        self.auth_failures = 0
        self.requests = 0
        self.shells: dict[str, dict[str, tuple[bytes, int]]] = {}
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                with open(server.log_path, "a") as log:
                    log.write((format % args) + "\n")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with server.lock:
                    server.requests += 1
                if not server._authorised(self.headers.get("Authorization") or ""):
                    with server.lock:
                        server.auth_failures += 1
                    self._send(401, b"", {"WWW-Authenticate": 'Basic realm="WSMAN"'})
                    return
                status, answer = server._answer(body)
                self._send(status, answer, {"Content-Type": "application/soap+xml;charset=UTF-8"})

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}/wsman"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="fake-winrm", daemon=True)

    def _authorised(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value).decode("utf-8").partition(":")
        except ValueError:
            return False
        return user == self.user and password == self.password

    def _answer(self, body: bytes) -> tuple[int, bytes]:
        root = ET.fromstring(body)
        action = root.findtext("s:Header/a:Action", namespaces=NS) or ""
        message_id = root.findtext("s:Header/a:MessageID", namespaces=NS) or ""
        selector = root.find("s:Header/w:SelectorSet/w:Selector[@Name='ShellId']", NS)
        shell_id = selector.text if selector is not None else None
        if action == f"{TRANSFER}/Create":
            shell_id = str(uuid.uuid4()).upper()
            with self.lock:
                self.shells[shell_id] = {}
            return 200, _envelope(f"{TRANSFER}/CreateResponse", message_id, (
                f"<x:ResourceCreated><a:Address>{self.endpoint}</a:Address><a:ReferenceParameters>"
                f"<w:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI>"
                f'<w:SelectorSet><w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet>'
                f"</a:ReferenceParameters></x:ResourceCreated><rsp:Shell><rsp:ShellId>{shell_id}</rsp:ShellId></rsp:Shell>"
            ))  # fmt: skip
        if shell_id not in self.shells:
            return 500, _envelope(f"{NS['a']}/fault", message_id, "<s:Fault><s:Reason><s:Text>The shell was not found.</s:Text></s:Reason></s:Fault>")
        commands = self.shells[shell_id]
        if action == f"{SHELL}/Command":
            command = root.findtext("s:Body/rsp:CommandLine/rsp:Command", namespaces=NS) or ""
            command_id = str(uuid.uuid4()).upper()
            commands[command_id] = self.host.run(command.strip())
            return 200, _envelope(f"{SHELL}/CommandResponse", message_id,
                                  f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId></rsp:CommandResponse>")  # fmt: skip
        if action == f"{SHELL}/Receive":
            stream = root.find("s:Body/rsp:Receive/rsp:DesiredStream", NS)
            command_id = stream.get("CommandId") if stream is not None else ""
            stdout, code = commands.get(command_id or "", (b"", 1))
            return 200, _envelope(f"{SHELL}/ReceiveResponse", message_id, (
                f'<rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="{command_id}">{base64.b64encode(stdout).decode()}</rsp:Stream>'
                f'<rsp:Stream Name="stdout" CommandId="{command_id}" End="true"></rsp:Stream>'
                f'<rsp:Stream Name="stderr" CommandId="{command_id}" End="true"></rsp:Stream>'
                f'<rsp:CommandState CommandId="{command_id}" State="{SHELL}/CommandState/Done"><rsp:ExitCode>{code}</rsp:ExitCode>'
                f"</rsp:CommandState></rsp:ReceiveResponse>"
            ))  # fmt: skip
        if action == f"{SHELL}/Signal":
            signal = root.find("s:Body/rsp:Signal", NS)
            commands.pop(signal.get("CommandId") if signal is not None else "", None)
            return 200, _envelope(f"{SHELL}/SignalResponse", message_id, "<rsp:SignalResponse/>")
        if action == f"{TRANSFER}/Delete":
            with self.lock:
                self.shells.pop(shell_id, None)
            return 200, _envelope(f"{TRANSFER}/DeleteResponse", message_id, "")
        return 400, _envelope(f"{NS['a']}/fault", message_id, f"<s:Fault><s:Reason><s:Text>unknown action {escape(action)}</s:Text></s:Reason></s:Fault>")

    def start(self) -> WinrmServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port() -> int:
    """A port nothing listens on (for the unreachable-host test)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
