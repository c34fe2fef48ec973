"""The guest's serial console, read while it grows: marker search and a readable tail (the text is untrusted)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

_ESCAPES = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|[@-Z\\-_]|c)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_WINDOW = 64 * 1024  # the marker is searched in the newest 64 KiB; a tail needs far less
MAX_CONSOLE_BYTES = 16 * 2**20  # a guest that writes more is flooding the output directory


def clean(text: str) -> str:
    """Terminal escapes and control characters out, carriage returns folded into line ends."""
    text = _ESCAPES.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text)


class ConsoleWatch:
    """Follows a console file; ``poll`` says whether the marker (or the failure marker) has appeared so far."""

    def __init__(self, path: Path, marker: str, failure_marker: str | None = None) -> None:
        self.path = path
        self.marker = re.compile(marker)
        self.failure_marker = re.compile(failure_marker) if failure_marker else None
        self.size = 0
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
        self.size = self._offset
        self._window = (self._window + clean(chunk.decode("utf-8", errors="replace")))[-_WINDOW:]
        if self.marker.search(self._window):
            return "marker"
        if self.failure_marker and self.failure_marker.search(self._window):
            return "failure"
        return None

    def flooded(self) -> bool:
        return self.size > MAX_CONSOLE_BYTES

    def tail(self, lines: int) -> str:
        self.poll()
        kept = [line.rstrip() for line in self._window.splitlines() if line.strip()]
        return "\n".join(kept[-lines:])
