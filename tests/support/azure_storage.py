"""Azure Storage for the azure provider's tests: Azurite (from npm) behind a counting proxy.

    with Azurite(log_dir) as azurite:             # azurite-blob on 127.0.0.1, in-memory, free port
        disk = azurite.publish_vhd(raw, "os")      # raw image + fixed-VHD footer as a sparse page blob
        url = azurite.sas_url("disks", "os", 3600)  # a real SAS made with azure-storage-blob
        azurite.proxy.bytes_served                 # body bytes GET answers carried through the proxy

SAS URLs point at the proxy, a reverse proxy in front of Azurite that counts the bytes it serves (the
"bytes read equal the written ranges" check), records the ranges asked and whether each answer carried a
Content-MD5, and plays Azure's side of a managed-disk grant: a SAS whose grant was revoked (or that
``expire_after`` says has expired) is answered 403 AuthenticationFailed, as Azure answers.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Callable

from support.procwatch import die_with_parent
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from azure.storage.blob import BlobSasPermissions, BlobServiceClient, generate_blob_sas

REPO = Path(__file__).resolve().parents[2]
AZURITE = REPO / ".cache" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
PAGE = 512
MiB = 2**20
_AUTH_FAILED = (
    '<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code><Message>Server failed to '
    "authenticate the request. Make sure the value of Authorization header is formed correctly including the "
    "signature.</Message><AuthenticationErrorDetail>Signed expiry time has passed</AuthenticationErrorDetail></Error>"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Proxy:
    """The counting, grant-enforcing reverse proxy in front of Azurite."""

    upstream_port: int
    port: int = 0
    bytes_served: int = 0
    ranges: list[tuple[str, int, int, bool]] = field(default_factory=list)  # (blob path, start, end, had MD5)
    refused: int = 0
    revoked: set[str] = field(default_factory=set)  # SAS signatures no longer valid
    expire_after: tuple[str, int] | None = None  # (blob path, answers) after which its current SAS expires
    # Called before each ranged data GET with its number (1, 2, ...): may return a status to answer instead.
    hook: Callable[[int], int | None] | None = None
    page_list: bytes | None = None  # the XML every page-range listing (comp=pagelist) answers instead of Azurite's
    page_list_status: int = 200  # ... and its status
    corrupt_next: bool = False  # flip a byte of the next ranged data answer (damage on the way)
    data_gets: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self._lock:
            self.bytes_served, self.refused, self.expire_after, self.hook, self.data_gets = 0, 0, None, None, 0
            self.corrupt_next = False
            self.page_list, self.page_list_status = None, 200
            self.ranges.clear()
            self.revoked.clear()

    def served_for(self, blob_path: str) -> int:
        with self._lock:
            return sum(end - start + 1 for path, start, end, _ in self.ranges if path == blob_path)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _refuse(self) -> None:
                body = _AUTH_FAILED.encode()
                self.send_response(403, "Server failed to authenticate the request.")
                self.send_header("Content-Type", "application/xml")
                self.send_header("x-ms-error-code", "AuthenticationFailed")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _forward(self) -> None:
                parts = urlsplit(self.path)
                signature = (parse_qs(parts.query).get("sig") or [""])[0]
                with proxy._lock:
                    expired = proxy.expire_after is not None and proxy.expire_after[0] == parts.path and proxy.expire_after[1] <= 0
                    if signature and (signature in proxy.revoked or expired):
                        if expired:
                            proxy.revoked.add(signature)
                            proxy.expire_after = None
                        proxy.refused += 1
                        refuse = True
                    else:
                        refuse = False
                if refuse:
                    self._refuse()
                    return
                if proxy.page_list is not None and "comp=pagelist" in parts.query:
                    self.send_response(proxy.page_list_status)
                    self.send_header("Content-Type", "application/xml")
                    if proxy.page_list_status >= 400:
                        self.send_header("x-ms-error-code", "InvalidHeaderValue")
                    self.send_header("x-ms-blob-content-length", "1048576")
                    self.send_header("Content-Length", str(len(proxy.page_list)))
                    self.end_headers()
                    self.wfile.write(proxy.page_list)
                    return
                # The download engine's ranged reads (not the SDK's footer read or page listing).
                data_get = self.command == "GET" and "comp=" not in parts.query and bool(self.headers.get("Range")) \
                    and "azsdk" not in (self.headers.get("User-Agent") or "")
                if data_get:
                    with proxy._lock:
                        proxy.data_gets += 1
                        number = proxy.data_gets
                    status = proxy.hook(number) if proxy.hook is not None else None
                    if status is not None:
                        body = b'<?xml version="1.0" encoding="utf-8"?><Error><Code>BlobNotFound</Code><Message>The specified blob does not exist.</Message></Error>'
                        self.send_response(status)
                        self.send_header("Content-Type", "application/xml")
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        self.wfile.write(body)
                        return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "proxy-connection")}
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                finally:
                    upstream.close()
                if data_get and answer.status == 206 and data:
                    with proxy._lock:
                        corrupt, proxy.corrupt_next = proxy.corrupt_next, False
                    if corrupt:
                        data = bytes([data[0] ^ 0xFF]) + data[1:]
                self.send_response_only(answer.status, answer.reason)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length", "keep-alive"):
                        self.send_header(key, value)
                self.send_header("Content-Length", answer.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                found = re.match(r"bytes (\d+)-(\d+)/", answer.getheader("Content-Range") or "")
                if self.command == "GET" and answer.status in (200, 206) and "comp=" not in parts.query:
                    with proxy._lock:
                        proxy.bytes_served += len(data)
                        if found:
                            start, end = int(found.group(1)), int(found.group(2))
                            proxy.ranges.append((parts.path, start, end, bool(answer.getheader("Content-MD5"))))
                        if proxy.expire_after is not None and proxy.expire_after[0] == parts.path:
                            proxy.expire_after = (parts.path, proxy.expire_after[1] - 1)

            do_GET = do_HEAD = do_PUT = do_DELETE = do_POST = _forward

        return Handler


class Azurite:
    """azurite-blob from .cache/azurite (mk/azure.mk installs it), in memory, on a free port, behind ``proxy``."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.proxy = Proxy(upstream_port=self.port)
        self._server: ThreadingHTTPServer | None = None
        self.service: BlobServiceClient | None = None
        self._issued = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    @property
    def public_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.proxy.port}/{ACCOUNT}"

    def __enter__(self) -> Azurite:
        if not AZURITE.exists():
            raise RuntimeError(f"{AZURITE} is missing: run make test-deps (mk/azure.mk installs Azurite)")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / "azurite.log", "wb")
        self.proc = subprocess.Popen(
            [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(self.port), "--inMemoryPersistence",
             "--skipApiVersionCheck", "--loose"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError(f"azurite did not start: {(self.log_dir / 'azurite.log').read_text()[-2000:]}") from None
                time.sleep(0.1)
        try:
            self._server = ThreadingHTTPServer(("127.0.0.1", 0), self.proxy.handler())
            self._server.daemon_threads = True
            self.proxy.port = self._server.server_address[1]
            threading.Thread(target=self._server.serve_forever, daemon=True).start()
            self.service = BlobServiceClient(account_url=self.endpoint, credential={"account_name": ACCOUNT, "account_key": KEY})
            for container in ("disks", "snapshots"):
                self.service.create_container(container)
        except BaseException:
            self.__exit__()  # a failed start leaves no azurite behind
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def blob(self, container: str, name: str):
        assert self.service is not None
        return self.service.get_blob_client(container, name)

    def publish_vhd(self, raw: Path, name: str, footer: bytes) -> int:
        """``raw``'s data extents and ``footer`` as page blob disks/<name>; returns the blob's length."""
        size = raw.stat().st_size
        blob = self.blob("disks", name)
        blob.create_page_blob(size + PAGE)
        with open(raw, "rb") as handle:
            for offset, length in _data_extents(handle.fileno(), size):
                handle.seek(offset)
                remaining = length
                while remaining:
                    piece = handle.read(min(4 * MiB, remaining))
                    blob.upload_page(piece, offset=offset + length - remaining, length=len(piece))
                    remaining -= len(piece)
        blob.upload_page(footer, offset=size, length=PAGE)
        return size + PAGE

    def copy_pages(self, source: tuple[str, str], dest: tuple[str, str]) -> None:
        """A sparse copy of one page blob (what a snapshot of a managed disk is)."""
        src, dst = self.blob(*source), self.blob(*dest)
        length = src.get_blob_properties().size
        dst.create_page_blob(length)
        for page in src.list_page_ranges():
            offset = page.start
            while offset <= page.end:
                piece = min(4 * MiB, page.end + 1 - offset)
                data = src.download_blob(offset=offset, length=piece).readall()
                dst.upload_page(data, offset=offset, length=piece)
                offset += piece

    def sas_url(self, container: str, name: str, seconds: int) -> str:
        self._issued += 1  # SAS times have whole seconds: two grants in one second must still differ
        token = generate_blob_sas(
            ACCOUNT, container, name, account_key=KEY, permission=BlobSasPermissions(read=True),
            expiry=datetime.now(timezone.utc) + timedelta(seconds=seconds + self._issued),
        )  # fmt: skip
        return f"{self.public_endpoint}/{container}/{name}?{token}"

    def revoke(self, sas_url: str) -> None:
        signature = (parse_qs(urlsplit(sas_url).query).get("sig") or [""])[0]
        with self.proxy._lock:
            self.proxy.revoked.add(signature)

    def written_bytes(self, container: str, name: str, limit: int) -> int:
        """Bytes of the blob's page ranges below ``limit`` (the disk, without its footer)."""
        return sum(max(0, min(p.end + 1, limit) - p.start) for p in self.blob(container, name).list_page_ranges())


def _data_extents(fd: int, size: int) -> list[tuple[int, int]]:
    """The file's data extents (SEEK_DATA/SEEK_HOLE), widened to 512-byte pages."""
    extents, offset = [], 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError:
            break
        end = os.lseek(fd, start, os.SEEK_HOLE)
        start, end = start // PAGE * PAGE, min(size, -(-end // PAGE) * PAGE)
        extents.append((start, end - start))
        offset = end
    return extents
