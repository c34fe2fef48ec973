"""The credentials a plan's provider is handed, built from its block at the moment a task needs them (never a
task input: inputs are hashed and may be persisted)."""

from __future__ import annotations

from typing import Any

from blocks import credentials_for
from hyperexport.migration import ResolvedPlan


def plan_credentials(plan: ResolvedPlan) -> Any | None:
    return credentials_for(plan.request.provider.value, plan.request.credentials_block)
