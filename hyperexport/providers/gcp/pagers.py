"""Listings read to a bound: a pager that never ends (or a bucket flooded with objects) cannot hold a run."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ...errors import TransferError

T = TypeVar("T")

MAX_ITEMS = 10_000


def bounded(items: Iterable[Any], pick: Callable[[Any], T], *, what: str) -> list[T]:
    """``pick(item)`` of each item of ``items``; TransferError once more than MAX_ITEMS come."""
    found: list[T] = []
    for item in items:
        if len(found) >= MAX_ITEMS:
            raise TransferError(f"{what} gave more than {MAX_ITEMS} items; stopped there. Remove what is left "
                                "by hand (the labels and the prefix name the run) and run the clean-up again.")  # fmt: skip
        found.append(pick(item))
    return found
