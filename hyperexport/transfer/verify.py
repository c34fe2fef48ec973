"""Whole-object checksums: which to compute, hashing a finished file, comparing digests."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import IntegrityError
from .checksums import normalize_hex, supported
from .hasher import FileHasher, Frontier
from .options import TransferOptions
from .source import CHECKSUM_ALGORITHMS, SourceInfo

log = logging.getLogger(__name__)


def expected_checksums(info: SourceInfo, options: TransferOptions, name: str) -> dict[str, str]:
    """The offered checksums this process can check, as lowercase hex (empty when ``verify`` is off)."""
    if not options.verify:
        return {}
    expected: dict[str, str] = {}
    for algorithm, value in info.checksums.items():
        algorithm = algorithm.lower()
        if algorithm not in CHECKSUM_ALGORITHMS or not supported(algorithm):
            log.warning("%s offers a %s checksum that cannot be checked here; skipping it", name, algorithm)
            continue
        digest = normalize_hex(algorithm, value)
        if digest is None:
            log.warning("%s offers a malformed %s checksum %r; skipping it", name, algorithm, value)
            continue
        expected[algorithm] = digest
    return expected


def algorithms_for(expected: dict[str, str]) -> list[str]:
    return ["sha256"] + sorted(a for a in expected if a != "sha256")


def compare(expected: dict[str, str], actual: dict[str, str], *, name: str) -> list[str]:
    """Raise ``IntegrityError`` naming the first mismatch; return the algorithms that matched."""
    for algorithm, digest in expected.items():
        if actual.get(algorithm) != digest:
            raise IntegrityError(
                f"{name}: the {algorithm} of the downloaded file is {actual.get(algorithm)}, but the source says "
                f"{digest}. The bytes were corrupted in transit or the source is inconsistent; the partial file "
                "was discarded, run again to download it afresh."
            )
    return sorted(expected)


def hash_file(path: Path, algorithms: list[str]) -> dict[str, str]:
    """Hash a complete file (read once, whatever the number of algorithms)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        frontier = Frontier(size)
        frontier.add(0, size)
        return FileHasher(fd, frontier, algorithms).start().result()
    finally:
        os.close(fd)
