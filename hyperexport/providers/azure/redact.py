"""SAS signatures kept out of third-party logs: urllib3 logs every request line, query string included, at
DEBUG (azure-storage-blob reads through it), and a SAS URL's query is the grant itself."""

from __future__ import annotations

import logging
import re

_SAS = re.compile(r"([?&](?:sig|se|sv|sp|sr|st|skoid|sktid|skt|ske|sks|skv)=)[^&\s\"']+", re.IGNORECASE)
_LOGGERS = ("urllib3.connectionpool",)


class SasRedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "sig=" in message.lower():
            record.msg, record.args = _SAS.sub(r"\1REDACTED", message), None
        return True


_FILTER = SasRedactingFilter()


def install() -> None:
    """Idempotent: the filter goes once on each logger that writes request lines."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
