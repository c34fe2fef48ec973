"""An EBS snapshot read through the EBS direct APIs, as a ``ByteRangeSource``.

``describe`` lists the snapshot's blocks (ListSnapshotBlocks, every page):
blocks that were never written are not listed, so they become the holes of
the download and are never fetched. ``read_range`` fetches each block of the
range with GetSnapshotBlock and checks it against the SHA-256 that comes with
it. The engine runs ``connections`` such readers at once (coldsnap's way to
hundreds of MiB/s), with no S3 bucket and no vmimport role.

Memory: the block tokens are kept from the listing, about 150 bytes per
written block (some 300 MiB for a fully written 1 TiB volume). A token that
has expired (a download of several hours) is renewed by listing again from
that block.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from ...errors import IntegrityError, InvalidInputError, TransferError
from ...transfer import DataRange, SourceInfo, TransferOptions
from .clients import AwsContext
from .errors import error_code, translated

log = logging.getLogger(__name__)

GiB = 2**30
#: Largest page ListSnapshotBlocks returns.
PAGE = 10000
#: Renew block tokens this long before AWS says they expire.
TOKEN_MARGIN = 300.0


class EbsSnapshotSource:
    """Blocks of one EBS snapshot. Thread-safe; see the module docstring."""

    def __init__(self, ctx: AwsContext, snapshot_id: str) -> None:
        self.ctx = ctx
        self.snapshot_id = snapshot_id
        self.name = f"ebs://{snapshot_id} ({ctx.region})"
        self._connections = 10
        self._verify = True
        self._lock = threading.Lock()
        self._tokens: dict[int, str] = {}
        self._expires_at: float | None = None  # time.time() of the earliest expiry seen
        self._block_size = 0

    def configure(self, options: TransferOptions) -> None:
        self._connections = options.connections
        self._verify = options.verify

    def _client(self) -> Any:
        return self.ctx.client("ebs", pool=self._connections + 2)

    def _list(self, start: int | None = None, pages: int | None = None) -> tuple[dict[int, str], int, int]:
        """Block tokens from ``start`` (all pages, or at most ``pages``), the block size and the volume size in GiB."""
        tokens: dict[int, str] = {}
        kwargs: dict[str, Any] = {"SnapshotId": self.snapshot_id, "MaxResults": PAGE}
        if start is not None:
            kwargs["StartingBlockIndex"] = start
        block_size = volume_gib = 0
        count = 0
        with translated(
            f"listing the blocks of snapshot {self.snapshot_id}", service="ebs", region=self.ctx.region,
            subject=f"snapshot {self.snapshot_id}",
        ):  # fmt: skip
            while True:
                page = self._client().list_snapshot_blocks(**kwargs)
                block_size = int(page.get("BlockSize") or block_size)
                volume_gib = int(page.get("VolumeSize") or volume_gib)
                tokens.update((b["BlockIndex"], b["BlockToken"]) for b in page.get("Blocks", []))
                self._note_expiry(page.get("ExpiryTime"))
                count += 1
                token = page.get("NextToken")
                if not token or (pages is not None and count >= pages):
                    break
                kwargs["NextToken"] = token
        return tokens, block_size, volume_gib

    def _note_expiry(self, expiry: datetime | None) -> None:
        if expiry is not None:
            at = expiry.timestamp()
            self._expires_at = at if self._expires_at is None else min(self._expires_at, at)

    def describe(self) -> SourceInfo:
        tokens, block_size, volume_gib = self._list()
        if block_size <= 0 or volume_gib <= 0:
            raise TransferError(f"{self.name}: ListSnapshotBlocks gave no block or volume size; run again")
        with self._lock:
            self._tokens, self._block_size = tokens, block_size
        log.info("%s: %d of %d blocks hold data", self.name, len(tokens), volume_gib * GiB // block_size)
        return SourceInfo(
            size=volume_gib * GiB,
            identity=f"ebs:{self.snapshot_id}:{block_size}",
            data_ranges=_runs(sorted(tokens), block_size),
            block_size=block_size,
            range_checksum="sha256-per-block" if self._verify else None,
        )

    def _token(self, index: int) -> str | None:
        with self._lock:
            expired = self._expires_at is not None and time.time() > self._expires_at - TOKEN_MARGIN
            if not expired:
                return self._tokens.get(index)
            self._expires_at = None
        fresh, _, _ = self._list(start=index, pages=1)
        with self._lock:
            self._tokens.update(fresh)
            return self._tokens.get(index)

    def read_range(self, offset: int, length: int) -> Iterator[bytes]:
        size = self._block_size
        if not size:
            raise InvalidInputError(f"{self.name}: read_range called before describe")
        if offset % size or length % size:
            raise InvalidInputError(f"{self.name}: range {offset}+{length} is not aligned to {size}-byte blocks")
        for index in range(offset // size, (offset + length) // size):
            token = self._token(index)
            yield bytes(size) if token is None else self._block(index, token)

    def _block(self, index: int, token: str) -> bytes:
        try:
            return self._get(index, token)
        except InvalidInputError as error:
            if error_code(error) != "ValidationException":
                raise
            with self._lock:  # most likely an expired token: list again from this block, once
                self._expires_at = 0.0
            renewed = self._token(index)
            if renewed is None or renewed == token:
                raise
            return self._get(index, renewed)

    def _get(self, index: int, token: str) -> bytes:
        size = self._block_size
        where = f"block {index} (bytes {index * size}-{(index + 1) * size - 1})"
        with translated(
            f"reading {where} of snapshot {self.snapshot_id}", service="ebs", region=self.ctx.region,
            subject=f"snapshot {self.snapshot_id}",
        ):  # fmt: skip
            answer = self._client().get_snapshot_block(SnapshotId=self.snapshot_id, BlockIndex=index, BlockToken=token)
            data = answer["BlockData"].read()
        if len(data) != size:
            raise TransferError(f"{self.name}: {where} arrived with {len(data)} bytes instead of {size}; will retry")
        if self._verify:
            self._check(data, answer, where)
        return data

    def _check(self, data: bytes, answer: dict[str, Any], where: str) -> None:
        algorithm, expected = answer.get("ChecksumAlgorithm"), answer.get("Checksum")
        if algorithm != "SHA256" or not expected:
            raise IntegrityError(
                f"{self.name}: GetSnapshotBlock sent {where} without a SHA-256 checksum (got {algorithm!r}), so it "
                "cannot be verified. Run again; to accept unverified data, turn verify_checksums off."
            )
        actual = base64.b64encode(hashlib.sha256(data).digest()).decode()
        if actual != expected:
            raise IntegrityError(
                f"{self.name}: {where} does not match its SHA-256 checksum (got {actual}, expected {expected}). "
                "The data was damaged on the way; run again. If it repeats, the snapshot itself is damaged."
            )


def _runs(indexes: list[int], block_size: int) -> list[DataRange]:
    """Sorted block indexes as byte ranges, adjacent blocks merged."""
    spans: list[tuple[int, int]] = []  # (first, last) block index of each run
    for index in indexes:
        if spans and index == spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], index)
        else:
            spans.append((index, index))
    return [DataRange(first * block_size, (last - first + 1) * block_size) for first, last in spans]
