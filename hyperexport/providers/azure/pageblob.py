"""A snapshot's page blob, read through a read SAS grant, as a ``ByteRangeSource``.

``describe`` obtains the grant (Resource Manager's beginGetAccess), reads the blob's properties and its VHD
footer (``vhd.py``: the disk's exact size is checked there) and lists the page ranges that hold data (every
page of the listing, adjacent ranges merged): everything else stays a hole and is never fetched. The source
is the disk without its footer, so the staged file is the raw disk at its exact virtual size.

``read_range`` is one ranged GET of the SAS URL (``HttpRangeSource``: ETag pinned, Content-Range checked,
HTTPS_PROXY/NO_PROXY honoured); a range of at most 4 MiB asks for its Content-MD5
(``x-ms-range-get-content-md5``), which Azure refuses on longer ranges. A grant that expires mid-download
(403 on a read) is renewed once and the range read again: the ranges already written stay, and the
engine's resume record is keyed by the snapshot, not by the SAS. ``close`` revokes the grant (the engine
calls it when the download ends, failed or cancelled too): a disk with an open grant stays locked.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ...errors import AccessDeniedError, HyperExportError, IntegrityError, InvalidInputError, SourceNotFoundError, TransferError
from ...transfer import DataRange, HttpRangeSource, SourceChangedError, SourceInfo, TransferOptions
from . import redact, snapshots, vhd
from .clients import AzureContext
from .credentials import sdk_import
from .options import ResourceId

log = logging.getLogger(__name__)

MD5_LIMIT = 4 * 2**20  # Azure answers 400 to x-ms-range-get-content-md5 on a longer range
_STORAGE_VERSION = "2021-08-06"


def merged(ranges: list[tuple[int, int]], size: int) -> list[DataRange]:
    """(start, inclusive end) page ranges as sorted byte ranges within ``size``, adjacent ones merged."""
    spans: list[list[int]] = []
    for start, end in sorted(ranges):
        start, stop = max(0, start), min(size, end + 1)
        if stop <= start:
            continue
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], stop)
        else:
            spans.append([start, stop])
    return [DataRange(start, stop - start) for start, stop in spans]


def _page_ranges(blob: object, length: int, name: str) -> list[tuple[int, int]]:
    """The (start, inclusive end) ranges that hold data, every page of the listing: at most one per 512-byte
    page of the blob, and a continuation marker never twice (either would be a listing without end)."""
    limit, seen, ranges, count = length // vhd.FOOTER + 1, set(), [], 0
    pages = blob.list_page_ranges().by_page()  # type: ignore[attr-defined]
    for page in pages:
        for found in page:
            count += 1
            if count > limit:
                raise IntegrityError(f"listing the page ranges of {name}: Azure Storage listed more than {limit} ranges for "
                                     f"a blob of {length} bytes; refused")
            if not getattr(found, "cleared", False):
                ranges.append((found.start, found.end))
        marker = pages.continuation_token
        if marker is not None:
            if marker in seen:
                raise IntegrityError(f"listing the page ranges of {name}: Azure Storage repeated a continuation marker "
                                     "(the listing would never end); refused. Run again.")
            seen.add(marker)
    return ranges


class PageBlobSource:
    """The disk in one snapshot's page blob, read through a SAS grant. Thread-safe."""

    def __init__(
        self, ctx: AzureContext, snapshot: ResourceId, *, disk_size: int | None, grant_seconds: int, poll_seconds: float = 5.0
    ) -> None:
        redact.install()
        self.ctx, self.snapshot = ctx, snapshot
        self.disk_size, self.grant_seconds, self.poll_seconds = disk_size, grant_seconds, poll_seconds
        self.name = f"azure snapshot {snapshot.name} ({snapshot.resource_group})"
        self._options = TransferOptions()
        self._lock = threading.Lock()
        self._sas: str | None = None
        self._readers: tuple[HttpRangeSource, HttpRangeSource] | None = None  # (with MD5, without)
        self._etag: str | None = None
        self._granted = False  # set before asking: a grant call that fails mid-way may still have opened one
        self.grants = 0

    def configure(self, options: TransferOptions) -> None:
        self._options = options

    # -- the grant ------------------------------------------------------------
    def _grant(self) -> str:
        with self._lock:
            if self._sas is None:
                self._granted = True
                self._sas = snapshots.grant(self.ctx, self.snapshot, self.grant_seconds, interval=self.poll_seconds)
                self.grants += 1
                self._readers = None
            return self._sas

    def _renew(self, failed: tuple[HttpRangeSource, HttpRangeSource]) -> None:
        """A new grant, unless another thread already renewed the one ``failed`` was reading with."""
        with self._lock:
            if self._readers is not failed:
                return
            log.info("%s: the read grant was refused (expired?); asking for a new one", self.name)
            self._sas = snapshots.grant(self.ctx, self.snapshot, self.grant_seconds, interval=self.poll_seconds)
            self.grants += 1
            for reader in failed:
                reader.close()
            self._readers = None

    def _reader_pair(self) -> tuple[HttpRangeSource, HttpRangeSource]:
        sas = self._grant()
        with self._lock:
            if self._readers is None:
                md5 = {"x-ms-version": _STORAGE_VERSION, "x-ms-range-get-content-md5": "true"}
                pair = (
                    HttpRangeSource(sas, headers=md5, name=self.name),
                    HttpRangeSource(sas, headers={"x-ms-version": _STORAGE_VERSION}, name=self.name),
                )
                for reader in pair:
                    reader.configure(self._options)
                info = pair[0].describe()  # pins the ETag: a snapshot never changes, a blob replaced under it would
                pair[1].describe()
                if self._etag is not None and info.identity != self._etag:
                    raise SourceChangedError(f"{self.name} changed under its new grant; run again")
                self._etag = info.identity
                self._readers = pair
            return self._readers

    # -- the source -----------------------------------------------------------
    def describe(self) -> SourceInfo:
        sas = self._grant()
        blob = sdk_import("azure.storage.blob").BlobClient.from_blob_url(sas)
        with _storage(f"reading the properties of {self.name}"):
            props = blob.get_blob_properties()
        if str(props.blob_type).split(".")[-1].lower() not in ("pageblob", "page"):
            raise InvalidInputError(f"{self.name} is a {props.blob_type} blob, not the page blob of a managed disk")
        length = int(props.size)
        if length <= vhd.FOOTER or length % vhd.FOOTER:
            raise IntegrityError(f"{self.name} is {length} bytes long: not a fixed VHD (whole 512-byte pages, a disk "
                                 "before its 512-byte footer); refused")
        with _storage(f"reading the VHD footer of {self.name}"):
            footer = blob.download_blob(offset=length - vhd.FOOTER, length=vhd.FOOTER).readall()
        parsed = vhd.parse_footer(footer, self.name)
        size = vhd.check_size(parsed, length, self.disk_size, self.name)
        with _storage(f"listing the page ranges of {self.name}"):
            pages = _page_ranges(blob, length, self.name)
        ranges = merged(pages, size)
        self._reader_pair()
        log.info("%s: %d bytes of %d hold data in %d ranges (VHD creator %r)", self.name,
                 sum(r.length for r in ranges), size, len(ranges), parsed.creator)
        return SourceInfo(
            size=size, identity=f"azure:{self.snapshot.subscription}/{self.snapshot.resource_group}/{self.snapshot.name}:{props.etag}",
            data_ranges=ranges, block_size=vhd.FOOTER,
            range_checksum="content-md5-per-range" if self._options.verify else None,
        )

    def read_range(self, offset: int, length: int) -> Iterator[bytes]:
        for attempt in (1, 2):
            pair = self._reader_pair()
            reader = pair[0] if self._options.verify and length <= MD5_LIMIT else pair[1]
            chunks = iter(reader.read_range(offset, length))
            try:
                first = next(chunks)  # the status comes before the first byte: a refused grant shows here
            except AccessDeniedError:
                if attempt == 2:
                    raise
                self._renew(pair)
                continue
            except StopIteration:
                return
            try:
                yield first
                yield from chunks
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
            return

    def close(self) -> None:
        """Revoke the grant (if this source asked for one, even when the asking failed) and drop the connections; usable again afterwards."""
        with self._lock:
            readers, granted = self._readers, self._granted
            self._readers = self._sas = None
            self._granted = False
        for reader in readers or ():
            reader.close()
        if granted:
            try:
                snapshots.revoke(self.ctx, self.snapshot, interval=self.poll_seconds)
            except HyperExportError as error:  # the download's own outcome is the one to report
                log.warning("%s: revoking the read grant failed (%s); the clean-up revokes it again", self.name, error)


@contextmanager
def _storage(action: str) -> Iterator[None]:
    """azure-storage-blob errors as hyperexport's (a SAS never appears in them)."""
    from azure.core import exceptions as azure_errors

    try:
        yield
    except azure_errors.AzureError as error:
        status = getattr(error, "status_code", None)
        if isinstance(error, azure_errors.ResourceNotFoundError) or status == 404:
            raise SourceNotFoundError(f"{action}: the blob does not exist (was the grant revoked?)") from None
        if isinstance(error, azure_errors.ClientAuthenticationError) or status == 403:
            raise AccessDeniedError(f"{action}: Azure Storage refused the SAS grant ({status})") from None
        if status is None or status in (408, 429) or status >= 500:
            raise TransferError(f"{action}: Azure Storage answered {status or type(error).__name__}; retrying") from None
        raise InvalidInputError(f"{action}: Azure Storage refused the request ({status}); a retry would not change that") from None
