"""The stages of one migration, and what becomes of the export's resources when the download fails.

    export -> download (every disk) -> clean-up -> manifest -> detect -> convert -> validate -> domain
    -> boot check -> report

``migration.run_migration`` runs the stages in this process; the migrate-vm flow runs each as a Prefect task
(retried, cached, tagged). Both take the keep-or-clean decision and its message from here.
"""

from __future__ import annotations

from typing import Any

from .errors import PermanentError
from .models import ExportResult
from .providers.contract import Provider

def clean_after_failed_download(export: ExportResult, error: BaseException) -> bool:
    """Remove what the export created once a download failed? Yes when retrying cannot help (a permanent error):
    nothing lingers at the source. No when it can: a retry of the run resumes the download from what was kept
    instead of exporting again. Everything is removed once every disk is downloaded."""
    return isinstance(error, PermanentError) or not export.created_resources


def kept_for_retry(provider: Provider[Any, Any], export: ExportResult) -> str:
    """What was kept after a failed download, and how to remove it if the run is given up."""
    where = " ".join(f"--opt {option}=..." for option in provider.cleanup_options)
    return (
        f"kept {len(export.created_resources)} resource(s) the export created so that a retry resumes the download: "
        f"{', '.join(map(str, export.created_resources))} (they are removed once every disk is downloaded; if you "
        f"give this run up, remove them with 'hyperexport --provider {provider.name} --cleanup-run {export.run_id}"
        f"{' ' + where if where else ''}' and the same values as this run)"
    )
