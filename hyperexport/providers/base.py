"""The contract every provider module keeps.

A provider module (``providers/local.py``, ``providers/aws.py`` …) exports:

    NAME                    its name, also the Prefect tag of its tasks
    DEFAULT_CONNECTIONS     parallel connections per disk download
    RECOMMENDED_LIMIT       how many of its tasks may run at once (seeds' advice)
    Options                 pydantic model: what identifies the VM at that source
    check_options(options, export_options)      validate before any bytes move
    describe(options) -> str                    one line for logs and reports
    export(options, export_options, credentials) -> ExportResult
    open_source(disk, options, credentials) -> ByteRangeSource
                            for disks whose location is not a local path or http(s) URL
    cleanup(result, options, credentials) -> list[str]
                            remove what the run created; returns what was removed
    cleanup_run(run_id, options, credentials) -> list[str]
                            the same for a run given up on, known only by its run id

The core never knows where disks came from: staging, manifest, conversion and
validation see only ExportResult and local paths.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel

from ..models import DiskSource, ExportOptions, ExportResult


class ProviderModule(Protocol):
    NAME: str
    DEFAULT_CONNECTIONS: int
    RECOMMENDED_LIMIT: int
    Options: type[BaseModel]

    def check_options(self, options: Any, export_options: ExportOptions) -> None: ...

    def describe(self, options: Any) -> str: ...

    def export(self, options: Any, export_options: ExportOptions, credentials: Any | None) -> ExportResult: ...

    def open_source(self, disk: DiskSource, options: Any, credentials: Any | None) -> Any: ...

    def cleanup(self, result: ExportResult, options: Any, credentials: Any | None) -> list[str]: ...

    def cleanup_run(self, run_id: str, options: Any, credentials: Any | None) -> list[str]: ...
