"""Tuning knobs of the transfer engine, with per-provider defaults."""

from __future__ import annotations


from pydantic import BaseModel, ConfigDict, Field

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


class TransferOptions(BaseModel):
    """How ``download`` moves bytes.

    Memory does not grow with the size of the object or with ``chunk_size``:
    a range is streamed from the connection into the output file, gathered into 1 MiB writes.
    Worst case, roughly::

        connections * 3 * read_size        socket read + HTTP parser buffer + piece being gathered
      + connections * 1 MiB                write block of each connection's thread
      + 4 MiB * (1 + offered checksums)    read-back buffer of each whole-file hash thread
      + ~100 bytes per range               the range plan (12,800 ranges for 100 GiB at 8 MiB)

    With the defaults (8 connections, 256 KiB reads) that is about 18 MiB on top
    of the interpreter and its imports (about 45 MiB); allocator slack roughly
    doubles it in practice: the 2 GiB benchmark peaks at about 75 MiB RSS.

    ``chunk_size`` only sets how much one request asks for, hence how much a
    retry or a kill can lose (one chunk per connection), and how closely the
    whole-file hash can follow the writers (keep it well below size/connections).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    connections: int = Field(default=8, ge=1, le=256, description="Parallel ranged reads (connections, workers).")
    chunk_size: int = Field(
        default=8 * MiB,
        ge=64 * KiB,
        le=4 * GiB,
        description="Bytes asked for by one ranged read; rounded up to the source's block size.",
    )
    read_size: int = Field(
        default=256 * KiB,
        ge=16 * KiB,
        le=64 * MiB,
        description="Largest piece read from a connection and written at once.",
    )
    max_attempts: int = Field(
        default=5, ge=1, le=100, description="Attempts per range (and for describe) before giving up."
    )
    integrity_rereads: int = Field(
        default=3,
        ge=0,
        le=20,
        description="Times a range whose own checksum fails (damage on the way) is read again before the "
        "download fails; a source that changed is never re-read.",
    )
    backoff: float = Field(
        default=0.5, ge=0, description="Base of the exponential backoff between attempts, in seconds."
    )
    backoff_max: float = Field(default=30.0, ge=0, description="Longest backoff between two attempts, in seconds.")
    retry_after_max: float = Field(
        default=300.0, ge=0, description="Longest Retry-After (429/503) honoured, in seconds."
    )
    read_timeout: float = Field(
        default=60.0, gt=0, description="Seconds without a byte before a connection counts as stalled and is retried."
    )
    connect_timeout: float = Field(default=15.0, gt=0, description="Seconds to open a connection.")
    bandwidth_limit_bps: int | None = Field(
        default=None, gt=0, description="Total bytes per second over all connections (token bucket); None = unlimited."
    )
    resume: bool = Field(default=True, description="Continue a partial download from its sidecar record.")
    verify: bool = Field(
        default=True, description="Check the checksums the source offers (whole object and per range)."
    )
    overwrite: bool = Field(
        default=False,
        description="Download again even when the destination exists and matches; otherwise it is verified and kept.",
    )
    skip_zero_blocks: bool = Field(
        default=True, description="Do not write pieces that are all zeros, so they stay holes in the output file."
    )
    preflight: bool = Field(default=True, description="Fail before downloading when the target lacks the room.")
    progress_interval: float = Field(default=1.0, ge=0, description="Seconds between progress callbacks.")
    checkpoint_interval: float = Field(
        default=5.0, gt=0, description="Seconds between fdatasync checkpoints that make the resume record crash-safe."
    )

    trust_env: bool = Field(
        default=True,
        description="Read HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY and SSL_CERT_FILE/SSL_CERT_DIR from the "
        "environment for http(s) sources.",
    )
    allow_cross_origin_redirects: bool = Field(
        default=False,
        description="Follow an http(s) redirect to another scheme, host or port (Authorization is never sent "
        "there). Presigned S3 and Azure SAS URLs do not redirect, so the default refuses such redirects.",
    )
