"""A threaded HTTP/1.1 file server on 127.0.0.1 that can misbehave on purpose.

    from support.fault_server import FaultServer, reset_after, fail_with

    with FaultServer() as server:                    # ephemeral port, stops on exit
        url = server.add_file("/disk.raw", data)     # bytes or a Path; returns the URL
        server.add_fault(fail_with(503, times=2))    # the next 2 requests get a 503
        server.add_fault(reset_after(100_000))       # then one GET is cut after 100 kB (TCP RST)
        ...
        server.stats.requests, server.stats.bytes_served, server.stats.log

It serves single ``Range: bytes=`` requests (206 + Content-Range, 416 when out
of range), HEAD, a strong ETag (the md5 of the content) honoured by
``If-Match`` (412; ``honor_if_match=False`` ignores it, as some servers do),
``Content-MD5`` on HEAD/200 and, with ``range_md5=True``, the md5 of the range
on a 206 (as Azure does; ``range_md5="text"`` sends that text instead). ``add_file(..., content_type=, auth=(user, password))``
sets the Content-Type and demands Basic authentication (401 otherwise).
``FaultServer(tls=ssl_context)`` serves https. Every request's headers are in
``stats.log[i].headers`` (lower-case names). Faults are applied in the order
added, one per request, each to ``times`` matching requests (None = forever):

    fail_with(status, headers=...)   answer with that status (403, 404, 503...)
    retry_after(seconds)             429 with Retry-After
    reset_after(nbytes)              send the headers and nbytes of body, then RST
    stall(seconds, after_bytes=0)    send headers (+ some body), then go silent
    corrupt(offset)                  flip the byte at that file offset in every response covering it
    swap(content)                    replace the file (new ETag) just before this request is served;
                                     applied again, it swaps back: the object changes mid-download
    fail_with(302, headers={"Location": ...})   a redirect

``tests/`` is on ``sys.path`` under pytest's default import mode (it has no
``__init__.py``), hence ``from support.fault_server import ...``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SEND_BLOCK = 64 * 1024


@dataclass
class Fault:
    kind: str  # "status" | "reset" | "stall" | "corrupt" | "swap"
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    after_bytes: int = 0
    seconds: float = 0.0
    offset: int | None = None  # only requests whose range covers this file offset
    times: int | None = 1  # None = every matching request
    methods: tuple[str, ...] | None = ("GET",)
    path: str | None = None  # None = any path
    skip: int = 0  # let this many matching requests through first
    content: bytes | None = None  # "swap": the other version of the file

    def matches(self, method: str, path: str, start: int | None, end: int | None) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.methods is not None and method not in self.methods:
            return False
        if self.path is not None and path != self.path:
            return False
        if self.offset is not None and (start is None or not start <= self.offset <= end):
            return False
        return True


def fail_with(status: int, *, times: int | None = 1, headers: dict[str, str] | None = None,
              methods: tuple[str, ...] | None = None, **kw) -> Fault:  # fmt: skip
    return Fault("status", status=status, times=times, headers=dict(headers or {}), methods=methods, **kw)


def retry_after(seconds: int, *, times: int | None = 1, **kw) -> Fault:
    return fail_with(429, times=times, headers={"Retry-After": str(seconds)}, **kw)


def reset_after(nbytes: int, *, times: int | None = 1, **kw) -> Fault:
    return Fault("reset", after_bytes=nbytes, times=times, **kw)


def stall(seconds: float, *, after_bytes: int = 0, times: int | None = 1, **kw) -> Fault:
    return Fault("stall", seconds=seconds, after_bytes=after_bytes, times=times, **kw)


def corrupt(offset: int, *, times: int | None = None, **kw) -> Fault:
    return Fault("corrupt", offset=offset, times=times, **kw)


def swap(content: bytes, *, times: int | None = 1, **kw) -> Fault:
    return Fault("swap", content=bytes(content), times=times, **kw)


@dataclass
class RequestRecord:
    method: str
    path: str
    range: str | None
    status: int
    bytes_sent: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    query: str = ""


@dataclass
class Stats:
    requests: int = 0
    bytes_served: int = 0
    log: list[RequestRecord] = field(default_factory=list)

    def count(self, method: str | None = None, status: int | None = None) -> int:
        return sum(
            1 for r in self.log if (method is None or r.method == method) and (status is None or r.status == status)
        )


@dataclass
class ServedFile:
    data: bytes | None
    path: Path | None
    size: int
    etag: str
    md5_b64: str
    mtime: float
    headers: dict[str, str]
    range_md5: bool | str
    accept_ranges: bool
    honor_if_match: bool = True
    content_type: str = "application/octet-stream"
    auth: tuple[str, str] | None = None

    def read(self, start: int, length: int) -> bytes:
        if self.data is not None:
            return self.data[start : start + length]
        with open(self.path, "rb") as handle:  # type: ignore[arg-type]
            return os.pread(handle.fileno(), length, start)


class FaultServer:
    """See the module docstring. ``rate_bps`` caps each response's send rate (None = as fast as possible)."""

    def __init__(self, *, rate_bps: int | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.rate_bps = rate_bps
        self.scheme = "https" if tls is not None else "http"
        self.stats = Stats()
        self._files: dict[str, ServedFile] = {}
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._httpd.tls = tls
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> "FaultServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> "FaultServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def url(self, path: str, query: str = "", *, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}" + (f"?{query}" if query else "")

    # -- content and faults ------------------------------------------------
    def add_file(self, path: str, content: bytes | Path, *, headers: dict[str, str] | None = None,
                 content_md5: bool = True, range_md5: bool | str = False, accept_ranges: bool = True,
                 etag: str | None = None, honor_if_match: bool = True,
                 content_type: str = "application/octet-stream",
                 auth: tuple[str, str] | None = None) -> str:  # fmt: skip
        """Serve ``content`` at ``path`` (replacing what was there: new ETag); return its URL."""
        if isinstance(content, Path):
            digest = hashlib.md5()
            with open(content, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            data, file_path, size = None, content, content.stat().st_size
        else:
            digest, data, file_path, size = hashlib.md5(content), bytes(content), None, len(content)
        all_headers = dict(headers or {})
        md5_b64 = base64.b64encode(digest.digest()).decode()
        if content_md5:
            all_headers.setdefault("Content-MD5", md5_b64)
        with self._lock:
            self._files[path] = ServedFile(
                data, file_path, size, etag or f'"{digest.hexdigest()}"', md5_b64, time.time(),
                all_headers, range_md5, accept_ranges, honor_if_match, content_type, auth,
            )  # fmt: skip
        return self.url(path)

    def _swap(self, path: str, fault: Fault) -> None:
        """Replace the file at ``path`` by ``fault.content``, keeping its settings; the fault keeps the old bytes."""
        with self._lock:
            old = self._files[path]
        previous = old.data if old.data is not None else old.read(0, old.size)
        headers = {k: v for k, v in old.headers.items() if k != "Content-MD5"}
        self.add_file(path, fault.content, headers=headers, content_md5="Content-MD5" in old.headers,
                      range_md5=old.range_md5, accept_ranges=old.accept_ranges,
                      honor_if_match=old.honor_if_match, content_type=old.content_type, auth=old.auth)  # fmt: skip
        with self._lock:  # a new Last-Modified too, even within the same second
            self._files[path].mtime = old.mtime + 1
        fault.content = previous

    def add_fault(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def reset_stats(self) -> None:
        with self._lock:
            self.stats = Stats()

    # -- used by the handler -----------------------------------------------
    def _take_fault(self, method: str, path: str, start: int | None, end: int | None) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path, start, end):
                    if fault.skip > 0:
                        fault.skip -= 1
                        continue
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self.stats.requests += 1
            self.stats.log.append(record)

    def _sent(self, record: RequestRecord, n: int) -> None:
        with self._lock:
            record.bytes_sent += n
            self.stats.bytes_served += n


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    owner: FaultServer
    tls: ssl.SSLContext | None = None

    def get_request(self):
        sock, address = super().get_request()
        if self.tls is not None:
            sock.settimeout(10)
            try:
                sock = self.tls.wrap_socket(sock, server_side=True)
            except (OSError, ssl.SSLError):
                sock.close()
                raise
            sock.settimeout(None)
        return sock, address

    def handle_error(self, request, client_address) -> None:  # quiet: clients vanish on purpose
        pass


class _Abort(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass

    # -- core --------------------------------------------------------------
    def _serve(self, *, head: bool) -> None:
        owner = self.server.owner
        path, _, query = self.path.partition("?")
        method = "HEAD" if head else "GET"
        range_header = self.headers.get("Range")
        record = RequestRecord(method, path, range_header, 0, headers={k.lower(): v for k, v in self.headers.items()},
                               query=query)
        with owner._lock:
            served = owner._files.get(path)
        start = end = None
        status = 200
        if served is not None and range_header and served.accept_ranges and not head:
            parsed = _parse_range(range_header, served.size)
            if parsed is None:
                status = 416
            else:
                start, end = parsed
                status = 206
        fault = owner._take_fault(method, path, start if start is not None else 0,
                                  end if end is not None else (served.size - 1 if served else 0))  # fmt: skip
        if fault is not None and fault.kind == "status":
            return self._simple(record, fault.status, fault.headers)
        if served is None:
            return self._simple(record, 404)
        if served.auth is not None:
            token = base64.b64encode(":".join(served.auth).encode()).decode()
            if self.headers.get("Authorization") != f"Basic {token}":
                return self._simple(record, 401, {"WWW-Authenticate": 'Basic realm="disks"'})
        if fault is not None and fault.kind == "swap":
            owner._swap(path, fault)
            with owner._lock:
                served = owner._files[path]
            if start is not None and end is not None:
                end = min(end, served.size - 1)
        if_match = self.headers.get("If-Match")
        if served.honor_if_match and if_match and if_match.strip() not in ("*", served.etag):
            return self._simple(record, 412)
        if status == 416:
            return self._simple(record, 416, {"Content-Range": f"bytes */{served.size}"})
        if status == 200:
            start, end = 0, served.size - 1
        length = end - start + 1 if served.size else 0
        body = served.read(start, length) if length else b""
        headers = {
            "Content-Type": served.content_type,
            "Content-Length": str(length),
            "ETag": served.etag,
            "Last-Modified": formatdate(served.mtime, usegmt=True),
        }
        if served.accept_ranges:
            headers["Accept-Ranges"] = "bytes"
        headers.update(served.headers)
        if status == 206:
            headers.pop("Content-MD5", None)
            headers["Content-Range"] = f"bytes {start}-{end}/{served.size}"
            if isinstance(served.range_md5, str):
                headers["Content-MD5"] = served.range_md5
            elif served.range_md5:
                headers["Content-MD5"] = base64.b64encode(hashlib.md5(body).digest()).decode()
        if fault is not None and fault.kind == "corrupt" and fault.offset is not None:
            i = fault.offset - start
            body = body[:i] + bytes([body[i] ^ 0xFF]) + body[i + 1 :]
        record.status = status
        owner._record(record)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if head:
            return
        try:
            self._send_body(record, body, fault)
        except (_Abort, OSError):
            self.close_connection = True

    def _send_body(self, record: RequestRecord, body: bytes, fault: Fault | None) -> None:
        owner = self.server.owner
        limit = len(body)
        if fault is not None and fault.kind in ("reset", "stall"):
            limit = min(limit, fault.after_bytes)
        view = memoryview(body)
        sent = 0
        started = time.monotonic()
        while sent < limit:
            n = min(SEND_BLOCK, limit - sent)
            self.wfile.write(view[sent : sent + n])
            owner._sent(record, n)
            sent += n
            if owner.rate_bps:
                ahead = sent / owner.rate_bps - (time.monotonic() - started)
                if ahead > 0 and owner._stopping.wait(ahead):
                    raise _Abort()
        if fault is not None and fault.kind == "reset":
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            raise _Abort()
        if fault is not None and fault.kind == "stall":
            self.wfile.flush()
            owner._stopping.wait(fault.seconds)
            self.connection.close()
            raise _Abort()
        if sent < len(body):
            self.wfile.write(view[sent:])
            owner._sent(record, len(body) - sent)

    def _simple(self, record: RequestRecord, status: int, headers: dict[str, str] | None = None) -> None:
        record.status = status
        self.server.owner._record(record)
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", "0")
        self.end_headers()


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """A single ``bytes=`` range as inclusive (start, end), or None when unsatisfiable."""
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        return None
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            n = int(last)
            return (max(0, size - n), size - 1) if n > 0 and size else None
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)
