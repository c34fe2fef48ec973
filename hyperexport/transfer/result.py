"""What ``download`` reports when a file stands complete under its final name."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field


class TransferResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: Path = Field(description="The final file.")
    size: int = Field(description="Size of the file in bytes.")
    source: str = Field(description="The source's name, secrets redacted.")
    bytes_fetched: int = Field(description="Bytes received from the source in this run (retries included).")
    bytes_resumed: int = Field(description="Bytes a previous run had already written and this one kept.")
    bytes_sparse: int = Field(
        default=0, description="Bytes the source declared empty, left as holes and never fetched."
    )
    sha256: str = Field(description="sha256 of the file, 64 lowercase hex digits (holes hash as zeros).")
    duration_seconds: float = Field(description="Wall time of this call, to a verified, renamed file.")
    ranges_fetched: int = Field(description="Ranged reads that completed in this run.")
    ranges_skipped_sparse: int = Field(
        default=0, description="Empty extents (holes) the source declared and we skipped."
    )
    retries: int = Field(default=0, description="Attempts that failed with a transient error and were retried.")
    verified_checksums: list[str] = Field(
        default_factory=list, description="Checks that passed, e.g. 'md5', 'crc32c', 'md5-per-range'."
    )
    already_complete: bool = Field(default=False, description="The destination existed, matched, and was kept.")
    layout: Literal["raw", "qcow2"] = Field(
        default="raw", description="How the file holds the bytes: as they are, or inside a qcow2 image."
    )
    read_back_ranges: int = Field(
        default=0, description="Ranges read back from the file that matched the digest they arrived with."
    )
    read_back_bytes: int = Field(
        default=0, description="Bytes of those ranges read back from the file (their unwritten zeros are not)."
    )
    bytes_zero_unwritten: int = Field(
        default=0,
        description="Fetched bytes that were all zeros: left unwritten in the fresh file (holes), checked against "
        "the range digests as zeros, not read back.",
    )
    read_back_unchecked_bytes: int = Field(
        default=0, description="Data bytes kept from a previous run without a recorded digest (not checked)."
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def checksum(self) -> str:
        """The manifest's form: ``sha256:<64 hex>``."""
        return f"sha256:{self.sha256}"

    @property
    def bytes_per_second(self) -> float:
        return self.bytes_fetched / self.duration_seconds if self.duration_seconds > 0 else 0.0
