"""Retry and caching policy shared by every task.

Results are persisted and the cache key is Prefect's default (inputs, task
source and flow run id), so retrying a failed flow run from the dashboard
re-runs only the failed step and what follows it. Two conditions:

* the results must be where the retry runs: the default is the worker's
  PREFECT_HOME/storage; with several worker hosts, make a shared storage block
  the server's default (``python -m deployments.bootstrap --result-storage``);
* every task input must hash: names and pydantic models, never a client or a
  block (Prefect then logs "Error encountered when computing cache key",
  persists nothing, and a retry runs every step again).
"""

from __future__ import annotations

import os
from typing import Any

from prefect.tasks import exponential_backoff

from hyperexport import cancel
from hyperexport.errors import PermanentError


def retry_unless_permanent(task: Any, task_run: Any, state: Any) -> bool:
    """Retry transient failures; bad input, missing VMs, refused credentials, a failing converter and an
    interrupted run cannot heal (a converter killed by Ctrl-C fails with a transient-looking error)."""
    if cancel.cancelled():
        return False
    error = state.data if isinstance(state.data, BaseException) else None
    if error is None:
        try:
            state.result(raise_on_failure=True)
        except BaseException as raised:  # noqa: BLE001 - we only classify it
            error = raised
    return not isinstance(error, PermanentError)


# Operators tune these per deployment through the worker's environment.
TASK_RETRIES = int(os.environ.get("HYPEREXPORT_TASK_RETRIES", "3"))
BACKOFF_FACTOR = float(os.environ.get("HYPEREXPORT_RETRY_BACKOFF_SECONDS", "10"))

RETRYING = {
    "retries": TASK_RETRIES,
    "retry_delay_seconds": exponential_backoff(backoff_factor=BACKOFF_FACTOR),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_unless_permanent,
    "persist_result": True,
}

QUICK = {
    "retries": min(2, TASK_RETRIES),
    "retry_delay_seconds": BACKOFF_FACTOR / 5,
    "retry_condition_fn": retry_unless_permanent,
    "persist_result": True,
}
