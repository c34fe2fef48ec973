"""Cloud Storage: the export objects read with parallel ranged GETs (a ``ByteRangeSource``), listed and deleted.

``describe`` reads the object's metadata (JSON API): its size, its generation (which pins every later read:
an object replaced mid-download fails with SourceChangedError instead of mixing two versions) and the
crc32c and md5 Cloud Storage computed, which the engine checks the whole download against. ``read_range``
streams one ``alt=media`` GET with a Range header and checks the Content-Range it gets back.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from ...errors import AccessDeniedError, SourceNotFoundError, TransferError
from ...transfer import SourceChangedError, SourceInfo, TransferOptions
from .clients import GcpContext
from .errors import translated
from .pagers import bounded

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
MAX_OBJECT_BYTES = 64 * 2**40  # the largest persistent disk; anything bigger is not an export


def b64_hex(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=True).hex()
    except ValueError:
        return None


def object_metadata(ctx: GcpContext, bucket: str, name: str) -> Any:
    with translated(f"reading gs://{bucket}/{name}", subject=f"object gs://{bucket}/{name}"):
        blob = ctx.storage().bucket(bucket).get_blob(name)
    if blob is None:
        raise SourceNotFoundError(f"gs://{bucket}/{name} does not exist: the export worker did not write it, or it was deleted since")
    return blob


def list_names(ctx: GcpContext, bucket: str, prefix: str) -> list[str]:
    with translated(f"listing gs://{bucket}/{prefix}", subject=f"bucket {bucket}"):
        return bounded(ctx.storage().list_blobs(bucket, prefix=prefix), lambda blob: str(blob.name), what=f"listing gs://{bucket}/{prefix}")


def delete_object(ctx: GcpContext, bucket: str, name: str) -> None:
    with translated(f"deleting gs://{bucket}/{name}", subject=f"object gs://{bucket}/{name}"):
        ctx.storage().bucket(bucket).blob(name).delete()


class GcsObjectSource:
    """Ranged reads of ``gs://bucket/name``, one generation of it. Thread-safe."""

    def __init__(self, ctx: GcpContext, bucket: str, name: str) -> None:
        self.ctx, self.bucket, self.object = ctx, bucket, name
        self.name = f"gs://{bucket}/{name}"
        self._connections, self._read_size, self._timeout = 16, 1024 * 1024, 60.0
        self._generation: str | None = None
        self._session: Any = None
        self._lock = threading.Lock()

    def configure(self, options: TransferOptions) -> None:
        self._connections = options.connections
        self._read_size = options.read_size

    def _http(self) -> Any:
        with self._lock:
            if self._session is None:
                import requests.adapters
                from google.auth.transport.requests import AuthorizedSession

                session = AuthorizedSession(self.ctx.credentials)
                adapter = requests.adapters.HTTPAdapter(pool_connections=2, pool_maxsize=self._connections + 2)
                session.mount("http://", adapter)
                session.mount("https://", adapter)
                self._session = session
            return self._session

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()

    def describe(self) -> SourceInfo:
        blob = object_metadata(self.ctx, self.bucket, self.object)
        size = int(blob.size or 0)
        if size > MAX_OBJECT_BYTES:
            raise TransferError(f"{self.name} is {size} bytes, larger than any persistent disk; not downloading it")
        with self._lock:
            self._generation = str(blob.generation) if blob.generation else None
        checksums = {k: v for k, v in (("crc32c", b64_hex(blob.crc32c)), ("md5", b64_hex(blob.md5_hash))) if v}
        return SourceInfo(size=size, identity=f"gcs:{self.bucket}/{self.object}#{self._generation or ''}", checksums=checksums)

    def read_range(self, offset: int, length: int) -> Iterator[bytes]:
        end = offset + length - 1
        url = f"{self.ctx.storage_root}/download/storage/v1/b/{quote(self.bucket, safe='')}/o/{quote(self.object, safe='')}"
        params = {"alt": "media"}
        if self._generation:
            params["generation"] = self._generation
        what = f"reading bytes {offset}-{end} of {self.name}"
        with translated(what, subject=f"object {self.name}"):
            answer = self._http().get(url, params=params, headers={"Range": f"bytes={offset}-{end}"}, stream=True,
                                      timeout=self._timeout)  # fmt: skip
        try:
            self._check(answer, offset, end)
            with translated(what, subject=f"object {self.name}"):
                yield from answer.iter_content(self._read_size)
        finally:
            answer.close()

    def _check(self, answer: Any, offset: int, end: int) -> None:
        status = answer.status_code
        if status in (200, 206):
            match = _CONTENT_RANGE.match(answer.headers.get("Content-Range") or "")
            if status == 206 and match and (int(match.group(1)), int(match.group(2))) == (offset, end):
                generation = answer.headers.get("x-goog-generation")
                if generation and self._generation and generation != self._generation:
                    raise SourceChangedError(f"{self.name} changed during the download (generation {generation}). Run again.")
                return
            raise TransferError(f"{self.name}: asked for bytes {offset}-{end}, Cloud Storage answered {status} "
                                f"{answer.headers.get('Content-Range')!r}")  # fmt: skip
        if status in (404, 412):
            raise SourceChangedError(f"{self.name} was replaced or deleted during the download ({status}). Run again.")
        if status in (401, 403):
            raise AccessDeniedError(f"Cloud Storage refused reading {self.name} ({status}): the credentials need "
                                    "storage.objects.get on the bucket")  # fmt: skip
        error = TransferError(f"Cloud Storage failed reading {self.name} ({status}); will retry")
        if status == 429:
            error.retry_after = 2.0  # type: ignore[attr-defined]
        raise error
