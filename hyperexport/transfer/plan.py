"""Which ranges a download fetches, keeps from a previous run, or leaves as holes."""

from __future__ import annotations

from dataclasses import dataclass

from . import ranges as R
from .options import TransferOptions
from .source import DataRange, SourceInfo


@dataclass(frozen=True)
class Plan:
    size: int
    chunk_size: int
    data: list[DataRange]  # ranges holding data (normalised, block-aligned)
    holes: list[DataRange]  # the rest of [0, size): zeros, never fetched
    resumed: list[DataRange]  # data a previous run already wrote
    chunks: list[DataRange]  # what this run fetches, in offset order

    @property
    def data_bytes(self) -> int:
        return R.total(self.data)

    @property
    def resumed_bytes(self) -> int:
        return R.total(self.resumed)

    @property
    def fetch_bytes(self) -> int:
        return R.total(self.chunks)

    @property
    def hole_bytes(self) -> int:
        return R.total(self.holes)


def effective_chunk_size(info: SourceInfo, options: TransferOptions) -> int:
    chunk = options.chunk_size
    if info.block_size:
        chunk = max(1, -(-chunk // info.block_size)) * info.block_size
    return chunk


def make_plan(info: SourceInfo, options: TransferOptions, completed: list[DataRange]) -> Plan:
    size = info.size
    if not info.supports_ranges:
        # One stream from offset 0: nothing can be skipped or resumed part-way.
        whole = [DataRange(0, size)] if size else []
        done = whole if R.normalize(completed, size) == whole else []
        return Plan(size, max(size, 1), whole, [], done, [] if done else whole)
    chunk = effective_chunk_size(info, options)
    data = R.normalize(info.data_ranges, size) if info.data_ranges is not None else R.normalize([(0, size)], size)
    if info.block_size:
        data = R.align(data, info.block_size, size)
    missing = R.subtract(data, R.normalize(completed, size))
    if info.block_size:
        missing = R.align(missing, info.block_size, size)
    resumed = R.subtract(data, missing)
    return Plan(size, chunk, data, R.holes(data, size), resumed, R.split(missing, chunk))
