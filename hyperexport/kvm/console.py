"""The guest's serial console, read while it grows: marker search and a readable tail (the text is untrusted)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

_ESCAPES = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|[@-Z\\-_]|c)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_WINDOW = 64 * 1024  # the marker is searched in the newest 64 KiB; a tail needs far less
_TAIL_BYTES = 16 * 1024
MAX_CONSOLE_BYTES = 16 * 2**20  # a guest that writes more is flooding the output directory


def clean(text: str) -> str:
    """Terminal escapes and control characters out, carriage returns folded into line ends."""
    text = _ESCAPES.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text)


def read_tail(path: Path, limit_bytes: int) -> str:
    """The last ``limit_bytes`` of a file that may still grow (or not exist yet), decoded leniently."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - limit_bytes))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


class ConsoleWatch:
    """Follows a console file; ``poll`` says whether the marker (or the failure marker) has appeared so far."""

    def __init__(self, path: Path, marker: str, failure_marker: str | None = None) -> None:
        self.path = path
        self.marker = re.compile(marker)
        self.failure_marker = re.compile(failure_marker) if failure_marker else None
        self._offset = 0
        self._window = ""

    def poll(self) -> Literal["marker", "failure"] | None:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read(_WINDOW)
        except FileNotFoundError:
            return None
        self._offset += len(chunk)
        self._window = (self._window + clean(chunk.decode("utf-8", errors="replace")))[-_WINDOW:]
        if self.marker.search(self._window):
            return "marker"
        if self.failure_marker and self.failure_marker.search(self._window):
            return "failure"
        return None

    def flooded(self) -> bool:
        try:
            return self.path.stat().st_size > MAX_CONSOLE_BYTES
        except FileNotFoundError:
            return False

    def tail(self, lines: int) -> str:
        """The last ``lines`` non-blank lines of the file as it is now (not as far as ``poll`` has read)."""
        text = clean(read_tail(self.path, _TAIL_BYTES))
        kept = [line.rstrip() for line in text.splitlines() if line.strip()]
        return "\n".join(kept[-lines:])
