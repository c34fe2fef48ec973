"""The nightly schedule fires: the server's own scheduler creates the upcoming nightly-migrations runs."""

from __future__ import annotations

import time
from datetime import timedelta
from zoneinfo import ZoneInfo

from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from support.prefect_stack import client

# The scheduler service runs at start-up and then every PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS (60 s by
# default); the bootstrap deploys after start-up, so the runs appear on its next loop.
WAIT_S = 150


def _scheduled_runs(deployment_id) -> list:
    with client() as c:
        return c.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))),
            limit=50,
        )


def test_the_servers_scheduler_creates_the_nightly_runs_at_the_cron_time(stack):
    with client() as c:
        nightly = c.read_deployment_by_name("nightly-migrations/nightly-migrations")
    [schedule] = nightly.schedules
    assert schedule.active and not nightly.paused
    zone = ZoneInfo(schedule.schedule.timezone)

    deadline = time.monotonic() + WAIT_S
    runs = _scheduled_runs(nightly.id)
    while len(runs) < 3 and time.monotonic() < deadline:
        time.sleep(3)
        runs = _scheduled_runs(nightly.id)
    assert len(runs) >= 3, f"the scheduler created {len(runs)} nightly run(s) in {WAIT_S}s; server log:\n" + \
        stack.server.log.read_text()[-3000:]

    starts = sorted(run.expected_start_time.astimezone(zone) for run in runs)
    assert all((s.hour, s.minute, s.second) == (1, 0, 0) for s in starts), starts  # 0 1 * * *
    assert all(later - earlier == timedelta(days=1) for earlier, later in zip(starts, starts[1:])), starts
    assert all(run.auto_scheduled and run.state.name == "Scheduled" for run in runs)

    # Other tests restart this server (a killed request may leave a traceback); a service's failure names its module.
    log = stack.server.log.read_text()
    assert "InvalidRequestError" not in log and "Can't evaluate bulk DML" not in log, log[-3000:]
    # Only the scheduler's own failures count: other services (the task-run recorder) may log a retried flush
    # when SQLite is busy under the suite's load, which says nothing about the schedule.
    service_errors = [line for line in log.splitlines() if "prefect.server.services.scheduler" in line and "ERROR" in line]
    service_tracebacks = [t for t in log.split("Traceback")[1:] if "prefect/server/services/scheduler" in t[:4000]]
    assert not service_errors and not service_tracebacks, (service_errors, service_tracebacks[:1])
