"""A converter's output made readable: colours, emoji and banners out, real messages kept.

hyper2kvm logs every line as ``HH:MM:SS <emoji> LEVEL [proc=...] message`` and frames each
run with rules of ``=``/``─`` and decorated stage headers (about 28 lines for a run that does
nothing). ``clean`` reduces a line to ``LEVEL message`` or to the bare text of lines that are
not log records (tracebacks, a converter's own error on stderr); ``Tail`` keeps the last
meaningful ones for the error message of a failed run.
"""

from __future__ import annotations

import re
import unicodedata
from collections import deque
from dataclasses import dataclass

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Za-z0-9]|\x1b[=>]")
_RECORD = re.compile(
    r"^(?:\d\d:\d\d:\d\d(?:[.,]\d+)?\s+)?(?P<level>DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\b\s*(?:\[[^\]]*\]\s*)?(?P<msg>.*)$"
)
_RULE = re.compile(r"^[\s=\-─━═_*#~.·•]*$")
PROGRESS = re.compile(r"\((\d+(?:\.\d+)?)/100%\)")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _strip_symbols(text: str) -> str:
    """Emoji, pictographs, variation selectors and box drawing go; letters, digits and punctuation stay."""
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if category in ("So", "Sk", "Cf", "Mn", "Co", "Cs") or "\u2500" <= char <= "\u257f":
            continue
        kept.append(char)
    return "".join(kept)


@dataclass(frozen=True)
class Line:
    level: str | None  # None: not a log record (a traceback line, a raw stderr message)
    text: str

    @property
    def decorative(self) -> bool:
        """A rule, a blank line or a progress counter: nothing a reader of an error needs."""
        return _RULE.match(self.text) is not None or PROGRESS.fullmatch(self.text) is not None

    def __str__(self) -> str:
        if self.level in (None, "INFO", "DEBUG"):
            return self.text
        return f"{self.level}: {self.text}"


def clean(raw: str) -> Line:
    text = " ".join(_strip_symbols(_ANSI.sub("", raw)).split())
    record = _RECORD.match(text)
    if record is None:
        return Line(None, text)
    level = "WARNING" if record["level"] == "WARN" else record["level"]
    return Line(level, record["msg"].strip())


class Tail:
    """The last ``size`` meaningful lines (no rules, no blank lines, no progress counters)."""

    def __init__(self, size: int = 10) -> None:
        self.lines: deque[str] = deque(maxlen=size)

    def add(self, line: Line) -> None:
        if not line.decorative:
            self.lines.append(str(line))

    def text(self, indent: str = "\n  ") -> str:
        return indent + indent.join(self.lines) if self.lines else " (it printed nothing)"
