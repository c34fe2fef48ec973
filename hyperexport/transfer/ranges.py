"""Interval arithmetic on byte ranges: normalise, subtract, split into chunks."""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import InvalidInputError
from .source import DataRange


def normalize(ranges: Iterable[tuple[int, int]], size: int) -> list[DataRange]:
    """Sort, clip to ``[0, size)``, drop empties and merge overlapping or touching ranges."""
    spans: list[tuple[int, int]] = []
    for offset, length in ranges:
        if offset < 0 or length < 0:
            raise InvalidInputError(f"invalid data range offset={offset} length={length}: both must be >= 0")
        start, end = offset, min(offset + length, size)
        if end > start:
            spans.append((start, end))
    spans.sort()
    merged: list[DataRange] = []
    cur_start = cur_end = -1
    for start, end in spans:
        if start <= cur_end:
            cur_end = max(cur_end, end)
            continue
        if cur_end > cur_start:
            merged.append(DataRange(cur_start, cur_end - cur_start))
        cur_start, cur_end = start, end
    if cur_end > cur_start:
        merged.append(DataRange(cur_start, cur_end - cur_start))
    return merged


def total(ranges: Iterable[DataRange]) -> int:
    return sum(r.length for r in ranges)


def subtract(ranges: list[DataRange], remove: list[DataRange]) -> list[DataRange]:
    """``ranges`` minus ``remove``; both normalised (sorted, disjoint)."""
    out: list[DataRange] = []
    j = 0
    for r in ranges:
        start, end = r.offset, r.end
        while j < len(remove) and remove[j].end <= start:
            j += 1
        k = j
        while start < end and k < len(remove) and remove[k].offset < end:
            cut = remove[k]
            if cut.offset > start:
                out.append(DataRange(start, cut.offset - start))
            start = max(start, cut.end)
            k += 1
        if start < end:
            out.append(DataRange(start, end - start))
    return out


def intersect(ranges: list[DataRange], keep: list[DataRange]) -> list[DataRange]:
    """The parts of ``ranges`` inside ``keep``; both normalised."""
    out: list[DataRange] = []
    i = j = 0
    while i < len(ranges) and j < len(keep):
        start = max(ranges[i].offset, keep[j].offset)
        end = min(ranges[i].end, keep[j].end)
        if end > start:
            out.append(DataRange(start, end - start))
        if ranges[i].end < keep[j].end:
            i += 1
        else:
            j += 1
    return out


def holes(ranges: list[DataRange], size: int) -> list[DataRange]:
    """The gaps of ``[0, size)`` that ``ranges`` (normalised) leave."""
    return subtract([DataRange(0, size)] if size else [], ranges)


def split(ranges: list[DataRange], chunk_size: int) -> list[DataRange]:
    """Cut ``ranges`` at every multiple of ``chunk_size`` so reads line up across runs."""
    out: list[DataRange] = []
    for r in ranges:
        start, end = r.offset, r.end
        while start < end:
            boundary = (start // chunk_size + 1) * chunk_size
            stop = min(end, boundary)
            out.append(DataRange(start, stop - start))
            start = stop
    return out


def align(ranges: list[DataRange], block_size: int, size: int) -> list[DataRange]:
    """Widen ``ranges`` to whole blocks of ``block_size`` (clipped to ``size``), merged."""
    widened = []
    for r in ranges:
        start = r.offset // block_size * block_size
        end = min(size, -(-r.end // block_size) * block_size)
        widened.append((start, end - start))
    return normalize(widened, size)
