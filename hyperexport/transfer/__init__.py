"""The transfer engine: parallel, resumable, sparse-aware, verified downloads with live progress.

    from hyperexport.transfer import HttpRangeSource, TransferOptions, download

    result = download(HttpRangeSource(url), Path("disk.raw"), TransferOptions(connections=8),
                      progress=callback)          # callback(current, total, file_name, file_index, total_files)
    result.checksum                               # "sha256:<64 hex>" for the manifest

Every provider hands ``download`` a ``ByteRangeSource`` (see ``source`` for the
protocol): ``HttpRangeSource`` for http(s) URLs (presigned S3, Azure SAS...),
``FileRangeSource`` for local files and mounts, or its own reader (S3/GCS/Azure
ranged reads, EBS GetSnapshotBlock).
"""

from .engine import download
from .file_source import FileRangeSource
from .http_source import HttpRangeSource
from .options import TransferOptions
from .redact import redact_url
from .result import TransferResult
from .source import CHECKSUM_ALGORITHMS, ByteRangeSource, DataRange, SourceChangedError, SourceInfo

__all__ = [
    "CHECKSUM_ALGORITHMS",
    "ByteRangeSource",
    "DataRange",
    "FileRangeSource",
    "HttpRangeSource",
    "SourceChangedError",
    "SourceInfo",
    "TransferOptions",
    "TransferResult",
    "download",
    "redact_url",
]
