"""Checksum objects with one interface (update/hexdigest) and header decoding helpers."""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from typing import Protocol


class Hasher(Protocol):
    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...

    def hexdigest(self) -> str: ...


class _Crc32:
    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes | bytearray | memoryview, /) -> None:
        self._value = zlib.crc32(data, self._value)

    def hexdigest(self) -> str:
        return f"{self._value:08x}"


class _Crc32c:
    def __init__(self, module) -> None:  # google_crc32c
        self._checksum = module.Checksum()

    def update(self, data: bytes | bytearray | memoryview, /) -> None:
        # The C extension takes bytes only (not memoryview/bytearray); copying is cheap next to I/O.
        self._checksum.update(data if isinstance(data, bytes) else bytes(data))

    def hexdigest(self) -> str:
        return self._checksum.digest().hex()


def _crc32c_module():
    try:
        import google_crc32c
    except ImportError:
        return None
    return google_crc32c if google_crc32c.implementation == "c" else None


def supported(algorithm: str) -> bool:
    """True when this process can compute ``algorithm`` at native speed."""
    if algorithm in ("sha256", "sha1", "md5", "crc32"):
        return True
    if algorithm == "crc32c":
        return _crc32c_module() is not None
    return False


def new_hasher(algorithm: str) -> Hasher:
    if algorithm in ("sha256", "sha1", "md5"):
        return hashlib.new(algorithm)
    if algorithm == "crc32":
        return _Crc32()
    if algorithm == "crc32c":
        module = _crc32c_module()
        if module is None:
            raise ValueError("crc32c needs the google-crc32c package (with its C extension)")
        return _Crc32c(module)
    raise ValueError(f"unknown checksum algorithm {algorithm!r}")


def b64_to_hex(value: str) -> str | None:
    """Decode a base64 digest (Content-MD5, x-goog-hash, x-amz-checksum-*) to lowercase hex; None if malformed."""
    try:
        return base64.b64decode(value.strip(), validate=True).hex()
    except (binascii.Error, ValueError):
        return None


_HEX_LEN = {"md5": 32, "sha1": 40, "sha256": 64, "crc32": 8, "crc32c": 8}


def normalize_hex(algorithm: str, value: str) -> str | None:
    """A digest given as hex or base64, as lowercase hex of the right length; None if it is neither."""
    value = value.strip()
    want = _HEX_LEN.get(algorithm)
    if want is None:
        return None
    if len(value) == want and all(c in "0123456789abcdefABCDEF" for c in value):
        return value.lower()
    decoded = b64_to_hex(value)
    return decoded if decoded is not None and len(decoded) == want else None
