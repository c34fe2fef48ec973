"""What the core does around every provider's export: the run id, roll-back, clean-up, --cleanup-run."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel

from ..models import ExportOptions, ExportResult, Resource
from .contract import Provider
from .session import ExportSession, new_run_id

log = logging.getLogger(__name__)


def export(
    provider: Provider[Any, Any],
    options: BaseModel,
    export_options: ExportOptions,
    credentials: Any | None = None,
    *,
    run_id: str | None = None,
) -> ExportResult:
    """``provider.export`` in a session of its own; what a failed export created is removed before its error
    goes on (unless ``keep_cloud_artifacts``). The result carries the run id and the ledger. The options are
    checked already (``provider.check``, in the migration's preflight)."""
    session: ExportSession[Any] = ExportSession(run_id=run_id or new_run_id(), credentials=credentials)
    try:
        result = provider.export(session, options, export_options)
    except BaseException:
        if session.ledger and not export_options.keep_cloud_artifacts:
            log.info("the %s export failed: removing the %d resource(s) it created", provider.name, len(session.ledger))
            try:
                provider.remove(session.run_id, list(session.ledger), options, credentials)
            except Exception as error:  # noqa: BLE001 - the export's own error is the one to report; this one is logged
                log.error("%s", error)
        raise
    return result.model_copy(update={"provider": provider.name, "run_id": session.run_id, "created_resources": list(session.ledger)})


def cleanup(provider: Provider[Any, Any], result: ExportResult, options: BaseModel, credentials: Any | None = None) -> list[Resource]:
    """Remove what the export created (its ledger), newest first."""
    if not result.created_resources or result.run_id is None:
        return []
    return provider.remove(result.run_id, list(reversed(result.created_resources)), options, credentials)


def cleanup_run(provider: Provider[Any, Any], run_id: str, options: BaseModel, credentials: Any | None = None) -> list[Resource]:
    """Remove what a run given up on left at the source, found by its run id alone."""
    found = provider.run_resources(run_id, options, credentials)
    return provider.remove(run_id, found, options, credentials) if found else []
