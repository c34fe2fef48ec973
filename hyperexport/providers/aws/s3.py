"""An S3 object read with parallel ranged GetObject calls, as a ``ByteRangeSource``.

``describe`` sends HeadObject (with ChecksumMode=ENABLED) for the size, the
ETag that pins every later read (If-Match: an object replaced mid-download
fails with IntegrityError instead of mixing two versions) and the checksums
S3 offers for the whole object: a full-object ``x-amz-checksum-*`` (crc32,
crc32c, sha1, sha256) and the ETag when it is a plain MD5 (single-part
uploads). ``read_range`` streams one ranged GET and checks its Content-Range.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

from ...errors import TransferError
from ...transfer import SourceChangedError, SourceInfo, TransferOptions
from ...transfer.checksums import b64_to_hex
from .clients import AwsContext
from .errors import error_code, translated

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
_CHECKSUMS = {"ChecksumCRC32": "crc32", "ChecksumCRC32C": "crc32c", "ChecksumSHA1": "sha1", "ChecksumSHA256": "sha256"}


class S3ObjectSource:
    """Ranged reads of ``s3://bucket/key``. Thread-safe."""

    def __init__(self, ctx: AwsContext, bucket: str, key: str) -> None:
        self.ctx, self.bucket, self.key = ctx, bucket, key
        self.name = f"s3://{bucket}/{key}"
        self._connections = 10
        self._read_size = 1024 * 1024
        self._etag: str | None = None
        self._lock = threading.Lock()

    def configure(self, options: TransferOptions) -> None:
        self._connections = options.connections
        self._read_size = options.read_size

    def _client(self) -> Any:
        return self.ctx.client("s3", pool=self._connections + 2)

    def _translated(self, action: str):
        return translated(f"{action} {self.name}", service="s3", region=self.ctx.region, subject=f"object {self.name}")

    def describe(self) -> SourceInfo:
        with self._translated("reading the attributes of"):
            head = self._client().head_object(Bucket=self.bucket, Key=self.key, ChecksumMode="ENABLED")
        etag = head.get("ETag")
        with self._lock:
            self._etag = etag
        checksums: dict[str, str] = {}
        if head.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT":
            for field, algorithm in _CHECKSUMS.items():
                value = head.get(field)
                digest = b64_to_hex(value) if value and "-" not in value else None
                if digest:
                    checksums[algorithm] = digest
        tag = (etag or "").strip('"')
        if re.fullmatch(r"[0-9a-fA-F]{32}", tag) and head.get("ServerSideEncryption") != "aws:kms":
            checksums.setdefault("md5", tag.lower())  # single-part, not KMS-encrypted: the ETag is the MD5
        return SourceInfo(
            size=int(head["ContentLength"]),
            identity=f"s3:{self.bucket}/{self.key}:{etag}:{head.get('VersionId') or ''}",
            checksums=checksums,
        )

    def read_range(self, offset: int, length: int) -> Iterator[bytes]:
        end = offset + length - 1
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key, "Range": f"bytes={offset}-{end}"}
        if self._etag:
            kwargs["IfMatch"] = self._etag
        try:
            with self._translated(f"reading bytes {offset}-{end} of"):
                answer = self._client().get_object(**kwargs)
        except Exception as error:
            if error_code(error) == "PreconditionFailed":
                raise SourceChangedError(f"{self.name} changed during the download (its ETag moved). Run again to start over.") from error
            raise
        match = _CONTENT_RANGE.match(answer.get("ContentRange") or "")
        if not match or (int(match.group(1)), int(match.group(2))) != (offset, end):
            raise TransferError(f"{self.name}: asked for bytes {offset}-{end}, S3 answered {answer.get('ContentRange')!r}")
        body = answer["Body"]
        try:
            with self._translated(f"reading bytes {offset}-{end} of"):
                yield from body.iter_chunks(self._read_size)
        finally:
            body.close()
