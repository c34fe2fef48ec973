"""hyper2kvm's output as it reaches the run log: its banner folded, its warnings and errors kept.

Kept, one line each: stage headers (progress through a long FIX), warnings, errors, raw
lines that read like trouble (a traceback, an error printed to stderr) and the pipeline's
verdict. Rules and "stage disabled" lines are dropped; other INFO lines and raw prints (the
JSON it dumps, fstab progress) pass only with verbose output, else they are counted and
folded into one line when the run ends.
"""

from __future__ import annotations

import re

from .base import LogLine
from .output import Line, clean

PREFIX = "hyper2kvm: "
_TROUBLE = re.compile(r"error|fail|traceback|exception|warn|denied|cannot|can't|not found|no such|killed", re.IGNORECASE)
_JSON = re.compile(r'^[\[\]{}"]')


class Hyper2KVMLog:
    def __init__(self, log: LogLine, *, verbose: bool = False) -> None:
        self.log = log
        self.verbose = verbose
        self.folded = 0

    def __call__(self, raw: str) -> None:
        line = clean(raw)
        shown = self._shown(line)
        if shown is None:
            self.folded += 1
        elif shown:
            self.log(PREFIX + shown)

    def _shown(self, line: Line) -> str | None:
        """The text to log, "" to drop silently, None to fold."""
        if line.decorative:
            return ""
        if line.level is None:
            shown = _TROUBLE.search(line.text) and not _JSON.match(line.text)
            return line.text if shown or self.verbose else None
        if line.level not in ("INFO", "DEBUG"):
            return str(line)
        if line.text.startswith("Stage:"):
            return "stage " + line.text.removeprefix("Stage:").strip()
        if line.text.startswith("Pipeline "):
            return line.text
        if line.text.endswith("stage disabled"):
            return ""
        return line.text if self.verbose else None

    def finish(self) -> None:
        if self.folded:
            self.log(f"{PREFIX}{self.folded} detail line(s) not shown (verbose output shows them; its report has the details)")
            self.folded = 0
