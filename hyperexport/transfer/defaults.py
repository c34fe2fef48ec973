"""How a kind of source is downloaded best: each provider declares its own (Provider.transfer)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TransferDefaults(BaseModel):
    """Parallel reads and range size for one kind of source, unless the request says otherwise."""

    model_config = ConfigDict(frozen=True)

    connections: int = Field(ge=1, le=128, description="Parallel reads per disk.")
    chunk_size: int = Field(ge=64 * 1024, description="Bytes per ranged read (rounded up to the source's block size).")
