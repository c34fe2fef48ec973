"""Retry and caching policy shared by every task.

Results are persisted and the cache key is Prefect's default (inputs, task
source and flow run id), so retrying a failed flow run from the dashboard
re-runs only the failed step and what follows it.
"""

from __future__ import annotations

from typing import Any

from prefect.tasks import exponential_backoff

from hyperexport.errors import PermanentError


def retry_unless_permanent(task: Any, task_run: Any, state: Any) -> bool:
    """Retry transient failures; bad input, missing VMs and refused credentials cannot heal."""
    error = state.data if isinstance(state.data, BaseException) else None
    if error is None:
        try:
            state.result(raise_on_failure=True)
        except BaseException as raised:  # noqa: BLE001 - we only classify it
            error = raised
    return not isinstance(error, PermanentError)


RETRYING = dict(
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_unless_permanent,
    persist_result=True,
)

QUICK = dict(
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=retry_unless_permanent,
    persist_result=True,
)
