"""A plain http(s) URL as a ``ByteRangeSource`` (presigned S3 URLs and Azure SAS URLs included).

``describe`` sends a HEAD (and, when HEAD is refused -- presigned URLs are
signed for GET only -- or says nothing of ranges, a ``Range: bytes=0-0`` GET)
to learn the size, the ETag it then pins every read to (``If-Match``), and the
whole-object checksums the server offers: ``Content-MD5`` (HEAD/200 only),
``x-ms-blob-content-md5``, ``x-goog-hash`` (crc32c, md5) and full-object
``x-amz-checksum-*``. ``read_range`` sends a ranged GET, checks the status and
``Content-Range``, and verifies a per-range ``Content-MD5`` when the server
sends one with a 206. Status codes map to the error tree: 401/403 ->
AccessDeniedError, 404/410 -> SourceNotFoundError, 408/429/5xx and network
errors -> TransferError (retried; Retry-After honoured), 412/416, a changed
total size, or an answer whose ETag or Last-Modified differs from the pinned
one (servers that ignore If-Match exist) -> SourceChangedError (the engine
starts over once; two versions are never stitched). A bad per-range
Content-MD5 -> IntegrityError (the engine reads the range again).

``describe`` refuses a web page (text/html, other text/*, JSON, XML) where a
disk was expected: a login page served with 200 is not a disk image.
Redirects are followed by hand (see ``redirects``): only to http(s), only on
the same origin unless allowed, never with Authorization across origins.
``user:password@`` in the URL is taken out once and sent as Basic
Authorization; ``url`` and ``name`` hold the URL reduced to scheme, host,
port and path, and nothing else of it reaches a message or log.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import re
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Literal
from urllib.parse import urljoin

import httpx

from ..errors import (
    AccessDeniedError, IntegrityError, InvalidInputError, SourceNotFoundError, TransferError, UnsafeImageError,
)
from . import redirects
from .checksums import b64_to_hex
from .http_client import make_client
from .options import TransferOptions
from .redact import redact_text, redact_url, split_credentials
from .source import DataRange, SourceChangedError, SourceInfo

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_CONTENT_RANGE_UNSATISFIED = re.compile(r"bytes\s+\*/(\d+)")


class HttpRangeSource:
    """Ranged GETs over one pooled httpx client. Thread-safe.

    ``headers`` go with every request (e.g. Authorization). ``data_ranges``
    declares the ranges that hold data when the caller knows them (an Azure
    page-range listing, a disk map); the rest stays a hole. ``checksums`` adds
    whole-object checksums known from elsewhere. ``etag_is_md5`` treats a
    32-hex ETag as the object's MD5 (true for single-part S3 objects).
    ``client``: bring your own httpx.Client (it is then not closed by us).
    ``kind="disk"`` refuses text, JSON, XML and HTML answers at ``describe``;
    ``kind="document"`` (an OVF descriptor, a manifest) refuses HTML only.
    ``verify_tls``: False, a CA bundle path or an ``ssl.SSLContext``.
    """

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        data_ranges: list[DataRange] | list[tuple[int, int]] | None = None,
        checksums: dict[str, str] | None = None,
        etag_is_md5: bool = False,
        client: httpx.Client | None = None,
        verify_tls: bool | str | ssl.SSLContext = True,
        name: str | None = None,
        kind: Literal["disk", "document"] = "disk",
    ) -> None:
        try:
            target, user, password = split_credentials(url)
            parsed = httpx.URL(target)
        except Exception:  # noqa: BLE001 - httpx.InvalidURL, ValueError from a bad port...
            raise InvalidInputError(f"not a valid URL: {redact_url(url)}") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise InvalidInputError(f"not an http(s) URL: {redact_url(url)}")
        self.url = redact_url(target)
        self.name = name or self.url
        self.kind = kind
        self._target = parsed  # what requests go to: the query string stays, the userinfo does not
        self._secrets = tuple(s for s in (url, target, password, parsed.query.decode("ascii", "replace")) if s)
        self._headers = {"Accept-Encoding": "identity", **dict(headers or {})}
        if user is not None and not any(k.lower() == "authorization" for k in self._headers):
            token = base64.b64encode(f"{user}:{password or ''}".encode()).decode("ascii")
            self._headers["Authorization"] = f"Basic {token}"
        self._data_ranges = [DataRange(*r) for r in data_ranges] if data_ranges is not None else None
        self._extra_checksums = dict(checksums or {})
        self._etag_is_md5 = etag_is_md5
        self._own_client = client is None
        self._client = client
        self._verify_tls = verify_tls
        self._options = TransferOptions()
        self._lock = threading.Lock()
        self._pin: dict[str, str] = {}  # conditional headers sent with every read
        self._identity: dict[str, str | None] = {}  # ETag / Last-Modified every answer must repeat
        self._size: int | None = None

    def sibling(self, name: str) -> "HttpRangeSource":
        """The file ``name`` beside this one (a VMDK descriptor's extent): the same server only, the same
        headers and TLS settings, never this URL's query (a signature is for one object)."""
        target = httpx.URL(urljoin(str(self._target.copy_with(query=None)), name))
        if (target.scheme, target.host, target.port) != (self._target.scheme, self._target.host, self._target.port):
            raise UnsafeImageError(f"{name!r} beside {self.url} is on another server; refusing it")
        client = None if self._own_client else self._client
        return HttpRangeSource(str(target), self._headers, client=client, verify_tls=self._verify_tls, name=name, kind=self.kind)

    # -- lifecycle ---------------------------------------------------------
    def configure(self, options: TransferOptions) -> None:
        self._options = options

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                o = self._options
                self._client = make_client(
                    connections=o.connections,
                    connect_timeout=o.connect_timeout,
                    read_timeout=o.read_timeout,
                    read_size=o.read_size,
                    verify=self._verify_tls,
                    trust_env=o.trust_env,
                )
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._own_client and self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> "HttpRangeSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- describe ----------------------------------------------------------
    def describe(self) -> SourceInfo:
        with self._stream({}, method="HEAD") as head:
            head.read()  # nothing to read; frees the connection before a probe takes one
        return self._describe(head)

    def _describe(self, head: httpx.Response) -> SourceInfo:
        if head.status_code in (400, 401, 403, 405, 501) or (
            head.status_code < 300 and head.headers.get("accept-ranges", "").lower() != "bytes"
        ):
            return self._describe_by_probe(head if head.status_code < 300 else None)
        self._raise_for_status(head, what="HEAD")
        size = self._int_header(head, "content-length")
        if size is None:
            return self._describe_by_probe(head)
        return self._info(head, size, supports_ranges=True, whole_body=True)

    def _describe_by_probe(self, head: httpx.Response | None) -> SourceInfo:
        with self._stream({"Range": "bytes=0-0"}) as resp:
            if resp.status_code == 416:
                match = _CONTENT_RANGE_UNSATISFIED.match(resp.headers.get("content-range", ""))
                return self._info(resp, int(match.group(1)) if match else 0, supports_ranges=True, whole_body=False)
            self._raise_for_status(resp, what="GET bytes=0-0")
            if resp.status_code == 206:
                match = _CONTENT_RANGE.match(resp.headers.get("content-range", ""))
                if not match or match.group(3) == "*":
                    raise TransferError(f"{self.name}: the server sent no usable Content-Range for bytes=0-0")
                return self._info(resp, int(match.group(3)), supports_ranges=True, whole_body=False, extra=head)
            size = self._int_header(resp, "content-length")
            if size is None:
                raise InvalidInputError(
                    f"{self.name}: the server gives neither ranges nor a Content-Length; cannot download it safely"
                )
            return self._info(resp, size, supports_ranges=False, whole_body=True)

    def _info(self, resp: httpx.Response, size: int, *, supports_ranges: bool, whole_body: bool,
              extra: httpx.Response | None = None) -> SourceInfo:  # fmt: skip
        """``extra``: the HEAD answer when a probe GET followed it (its Content-MD5 covers the object)."""
        headers = httpx.Headers(extra.headers if extra is not None else {})
        headers.update(resp.headers)
        for answer in (extra, resp):
            if answer is not None and answer.status_code < 300:  # a 416 (empty object) has an error page body
                self._refuse_web_page(answer)
        etag = resp.headers.get("etag")  # what the GETs to come must repeat
        last_modified = resp.headers.get("last-modified")
        self._size = size
        self._identity = {"etag": etag, "last-modified": last_modified}
        self._pin = {}
        if etag and not etag.startswith("W/"):
            self._pin["If-Match"] = etag
        elif last_modified:
            self._pin["If-Unmodified-Since"] = last_modified
        identity = None
        if etag or last_modified:
            identity = f"http:{size}:{etag or ''}:{last_modified or ''}"
        checksums = self._checksums(resp.headers, whole_body=whole_body, etag=etag)
        if extra is not None:
            for alg, digest in self._checksums(extra.headers, whole_body=True, etag=etag).items():
                checksums.setdefault(alg, digest)
        return SourceInfo(
            size=size,
            identity=identity,
            checksums=checksums,
            data_ranges=self._data_ranges,
            supports_ranges=supports_ranges,
        )

    def _refuse_web_page(self, resp: httpx.Response) -> None:
        media = resp.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        html = media in ("text/html", "application/xhtml+xml")
        if self.kind == "disk":
            refused = html or media.startswith("text/") or media in ("application/json", "application/xml")
            refused = refused or media.endswith(("+json", "+xml"))
        else:
            refused = html
        if not refused:
            return
        if html:
            raise InvalidInputError(
                f"{self.name} answered with a web page ({media}), not a disk image; the URL probably needs "
                "authentication or points at a login page. Use a direct (presigned, SAS or authenticated) URL."
            )
        raise InvalidInputError(
            f"{self.name} answered with a document ({media}), not a disk image; check that the URL points at "
            "the disk itself and not at an API answer or an error page."
        )

    def _checksums(self, headers: httpx.Headers, *, whole_body: bool, etag: str | None) -> dict[str, str]:
        found: dict[str, str] = {}

        def put(alg: str, b64: str | None) -> None:
            digest = b64_to_hex(b64) if b64 else None
            if digest:
                found.setdefault(alg, digest)

        if whole_body:  # on a 206, Content-MD5 covers the range only
            put("md5", headers.get("content-md5"))
        put("md5", headers.get("x-ms-blob-content-md5"))
        for part in headers.get_list("x-goog-hash", split_commas=True):
            key, _, value = part.strip().partition("=")
            if key in ("crc32c", "md5"):
                put(key, value)
        if headers.get("x-amz-checksum-type", "FULL_OBJECT").upper() == "FULL_OBJECT":
            for alg in ("crc32", "crc32c", "sha1", "sha256"):
                value = headers.get(f"x-amz-checksum-{alg}")
                if value and "-" not in value:  # "...-N" is a checksum of part checksums
                    put(alg, value)
        if self._etag_is_md5 and etag:
            tag = etag.strip('"')
            if re.fullmatch(r"[0-9a-fA-F]{32}", tag):
                found.setdefault("md5", tag.lower())
        for alg, value in self._extra_checksums.items():
            found[alg] = value
        return found

    # -- read_range --------------------------------------------------------
    def read_range(self, offset: int, length: int) -> Iterator[bytes]:
        end = offset + length - 1
        what = f"GET bytes={offset}-{end}"
        headers = {"Range": f"bytes={offset}-{end}", **self._pin}
        with self._stream(headers, what=what) as resp:
            self._raise_for_status(resp, what=what)
            self._check_identity(resp, what)
            if resp.status_code == 200:
                if offset != 0 or length != self._size:
                    raise InvalidInputError(
                        f"{self.name}: the server ignored the Range header; download it with connections=1"
                    )
            else:
                self._check_content_range(resp, offset, end)
            declared = self._int_header(resp, "content-length")
            if declared is not None and declared != length:
                raise TransferError(f"{self.name}: {what} answered with {declared} bytes instead of {length}")
            # A malformed per-range Content-MD5 counts as none, as a malformed whole-object one does.
            md5_b64 = resp.headers.get("content-md5") if resp.status_code == 206 else None
            expected = b64_to_hex(md5_b64) if md5_b64 and self._options.verify else None
            md5 = hashlib.md5() if expected else None
            try:
                for piece in resp.iter_raw():
                    if md5 is not None:
                        md5.update(piece)
                    yield piece
            except httpx.HTTPError as exc:
                raise self._transport_error(exc, what) from None
            if md5 is not None and md5.hexdigest() != expected:
                raise IntegrityError(
                    f"{self.name}: bytes {offset}-{end} do not match their Content-MD5 "
                    f"(got {md5.hexdigest()}, expected {expected})"
                )

    def _check_content_range(self, resp: httpx.Response, start: int, end: int) -> None:
        match = _CONTENT_RANGE.match(resp.headers.get("content-range", ""))
        if not match:
            raise TransferError(f"{self.name}: a 206 answer without a valid Content-Range for bytes={start}-{end}")
        got_start, got_end, total = int(match.group(1)), int(match.group(2)), match.group(3)
        if total != "*" and self._size is not None and int(total) != self._size:
            raise SourceChangedError(
                f"{self.name} changed during the download: its size is now {total}, was {self._size}."
            )
        if (got_start, got_end) != (start, end):
            raise TransferError(f"{self.name}: asked for bytes {start}-{end}, the server sent {got_start}-{got_end}")

    def _check_identity(self, resp: httpx.Response, what: str) -> None:
        """Every answer must come from the pinned version, whether or not the server honoured If-Match."""
        for header, pinned in self._identity.items():
            got = resp.headers.get(header)
            if pinned is not None and got != pinned:
                raise SourceChangedError(
                    f"{self.name}: {what} answered with {header} {got or '(none)'}, but the download started "
                    f"with {pinned}: the source changed during the download."
                )

    # -- plumbing ----------------------------------------------------------
    def _stream(self, headers: dict[str, str], *, method: str = "GET", what: str | None = None):
        return _StreamContext(self, method, headers, what or f"{method} {headers.get('Range', '')}".strip())

    def _open(self, method: str, headers: dict[str, str], what: str) -> httpx.Response:
        """Send the request, following allowed redirects; the answer is streamed (the caller closes it)."""
        client = self._http()
        url, sent = self._target, {**self._headers, **headers}
        for _ in range(redirects.MAX_REDIRECTS + 1):
            request = client.build_request(method, url, headers=sent)
            try:
                resp = client.send(request, stream=True, follow_redirects=False)
            except httpx.HTTPError as exc:
                raise self._transport_error(exc, what) from None
            location = resp.headers.get("location")
            if resp.status_code not in redirects.REDIRECT_STATUSES or location is None:
                return resp
            resp.close()
            url = redirects.next_url(self.name, what, url, location, self._target,
                                     cross_origin=self._options.allow_cross_origin_redirects)  # fmt: skip
            sent = redirects.headers_for(url, self._target, sent)
        raise InvalidInputError(f"{self.name}: {what} was redirected more than {redirects.MAX_REDIRECTS} times")

    def _transport_error(self, exc: BaseException, what: str) -> TransferError:
        kind = type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            detail = (
                "timed out (no data within the read timeout)" if isinstance(exc, httpx.ReadTimeout) else "timed out"
            )
        else:
            detail = redact_text(str(exc), *self._secrets) or "connection failed"
        return TransferError(f"{self.name}: {what} failed: {kind}: {detail}")

    def _raise_for_status(self, resp: httpx.Response, *, what: str) -> None:
        code = resp.status_code
        if code < 300:
            return
        prefix = f"{self.name}: {what} answered HTTP {code}"
        if code in (401, 403):
            raise AccessDeniedError(
                f"{prefix}: access denied. Check the credentials, or that the presigned/SAS URL has not expired."
            )
        if code in (404, 410):
            raise SourceNotFoundError(f"{prefix}: no such object. Check the URL.")
        if code in (412, 416):
            raise SourceChangedError(f"{prefix}: the object changed since the download started.")
        if code in (408, 429) or code >= 500:
            err = TransferError(f"{prefix}; will retry")
            err.retry_after = _retry_after(resp.headers.get("retry-after"))  # type: ignore[attr-defined]
            raise err
        raise InvalidInputError(f"{prefix}: the server refused the request.")

    @staticmethod
    def _int_header(resp: httpx.Response, name: str) -> int | None:
        value = resp.headers.get(name)
        return int(value) if value is not None and value.strip().isdigit() else None


class _StreamContext:
    """A streamed request with transport errors mapped and redirects checked, usable from a generator."""

    def __init__(self, source: HttpRangeSource, method: str, headers: dict[str, str], what: str) -> None:
        self._source, self._method, self._headers, self._what = source, method, headers, what
        self._response: httpx.Response | None = None

    def __enter__(self) -> httpx.Response:
        self._response = self._source._open(self._method, self._headers, self._what)
        return self._response

    def __exit__(self, *exc: object) -> None:
        if self._response is not None:
            try:
                self._response.close()
            except httpx.HTTPError:
                pass


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
