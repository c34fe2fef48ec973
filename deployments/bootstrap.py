"""Set a Prefect server up for hyperexport, idempotently, in one command.

    PREFECT_API_URL=http://127.0.0.1:4200/api python -m deployments.bootstrap [options]

1. registers the block types (credentials for every provider, the migration plan);
2. creates the process work pool (flow runs send heartbeats every 30 s);
3. creates the per-provider tag concurrency limits (the seeds' recommended
   values unless given; an existing limit is left as it is unless given);
4. installs the automation that marks flow runs without heartbeats Crashed
   (a killed worker would otherwise leave them Running, and the UI cannot
   retry a Running run);
5. optionally makes a storage block the server's default result storage
   (several workers must share results for a retry to skip finished steps);
6. deploys migrate-vm and nightly-migrations from prefect.yaml.

Run it again at any time: every step checks what exists first.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
PREFECT_FILE = REPO / "prefect.yaml"
DEFAULT_POOL = "hyperexport"
ZOMBIE_AUTOMATION = "hyperexport-crash-zombie-flow-runs"
HEARTBEAT_SECONDS = 30  # Prefect's minimum

def recommended_limits() -> dict[str, int]:
    """Each registered provider's own recommendation (the seeds' advice: AWS 3-5, Azure 5-10, GCP 3-5,
    Hyper-V 2-3, vSphere 3-5)."""
    from hyperexport.providers.registry import providers

    return {provider.name: provider.recommended_limit for provider in providers()}


@dataclass
class Options:
    pool: str = DEFAULT_POOL
    limits: dict[str, int] = field(default_factory=dict)  # explicit: created or updated
    reset_limits: bool = False  # set every limit to its default, even existing ones
    zombie_after_seconds: int = 90
    result_storage: str | None = None  # block slug, e.g. s3-bucket/hyperexport-results
    deploy: bool = True
    cron: str | None = None
    timezone: str | None = None
    prefect_file: Path = PREFECT_FILE


def _say(message: str) -> None:
    print(f"bootstrap: {message}", flush=True)


def check_server() -> str:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise SystemExit("bootstrap: PREFECT_API_URL is not set; start the server (prefect server start) and "
                         "export PREFECT_API_URL=http://127.0.0.1:4200/api")
    with get_client(sync_client=True) as client:
        try:
            client.hello()
        except Exception as error:  # noqa: BLE001
            raise SystemExit(f"bootstrap: the Prefect server at {url} does not answer ({type(error).__name__}); "
                             "start it with `prefect server start`") from None
    return url


def register_blocks() -> list[str]:
    from blocks import register_block_types

    registered, skipped = register_block_types()
    for reason in skipped:
        _say(f"skipped block type {reason}")
    _say(f"block types registered: {', '.join(registered)}")
    return registered


def process_job_template() -> dict[str, Any]:
    from prefect.workers.process import ProcessWorker

    template = ProcessWorker.get_default_base_job_template()
    env = template["variables"]["properties"]["env"]
    env["default"] = {**(env.get("default") or {}), "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS)}
    return template


def ensure_work_pool(name: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type="process", base_job_template=process_job_template()))
            _say(f"work pool {name!r} created (process; flow runs send heartbeats every {HEARTBEAT_SECONDS}s)")
            return
        if pool.type != "process":
            raise SystemExit(f"bootstrap: work pool {name!r} exists with type {pool.type!r}; hyperexport needs a "
                             "process pool: choose another name with --pool")
        template = pool.base_job_template
        env = template.get("variables", {}).get("properties", {}).get("env", {})
        if (env.get("default") or {}).get("PREFECT_FLOWS_HEARTBEAT_FREQUENCY"):
            _say(f"work pool {name!r} exists")
            return
        env["default"] = {**(env.get("default") or {}), "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS)}
        client.update_work_pool(name, WorkPoolUpdate(base_job_template=template))
        _say(f"work pool {name!r} exists; flow runs now send heartbeats every {HEARTBEAT_SECONDS}s")


def ensure_tag_limits(explicit: dict[str, int], reset: bool = False) -> dict[str, int]:
    """One tag concurrency limit per provider; returns the limits in force."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    recommended = recommended_limits()
    unknown = sorted(set(explicit) - set(recommended))
    if unknown:
        raise SystemExit(f"bootstrap: no provider named {', '.join(unknown)}; limits are per provider: {', '.join(recommended)}")
    wanted = {**recommended, **explicit}
    in_force: dict[str, int] = {}
    with get_client(sync_client=True) as client:
        for tag in wanted:
            try:
                current = client.read_concurrency_limit_by_tag(tag).concurrency_limit
            except ObjectNotFound:
                current = None
            if current is not None and tag not in explicit and not reset:
                in_force[tag] = current
                continue
            if current != wanted[tag]:
                client.create_concurrency_limit(tag=tag, concurrency_limit=wanted[tag])  # an upsert
            in_force[tag] = wanted[tag]
    _say("tag concurrency limits: " + ", ".join(f"{tag}={n}" for tag, n in in_force.items()))
    return in_force


def zombie_automation(after_seconds: int):
    """The automation of Prefect's "detect zombie flows" guide: no heartbeat for a while → Crashed."""
    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    return Automation(
        name=ZOMBIE_AUTOMATION,
        description=(
            f"Marks a flow run Crashed when it sent no heartbeat for {after_seconds}s (its worker or host died), "
            "so that it can be retried from the UI and its concurrency slots come back."
        ),
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={
                "prefect.flow-run.heartbeat",
                "prefect.flow-run.Completed",
                "prefect.flow-run.Failed",
                "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed",
            },
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=after_seconds),
        ),
        actions=[ChangeFlowRunState(
            state=StateType.CRASHED,
            message=f"Flow run marked as crashed: no heartbeat for {after_seconds}s (worker or host died). Retry it from the UI.",
        )],
    )


def ensure_zombie_automation(after_seconds: int) -> None:
    from prefect.client.orchestration import get_client
    from prefect.events.schemas.automations import AutomationCore

    if after_seconds < 2 * HEARTBEAT_SECONDS:
        raise SystemExit(f"bootstrap: --zombie-after must be at least {2 * HEARTBEAT_SECONDS}s (two heartbeats), "
                         "or live runs would be crashed")
    wanted = zombie_automation(after_seconds)
    core = AutomationCore(**wanted.model_dump(exclude={"id"}))
    with get_client(sync_client=True) as client:
        existing = client.read_automations_by_name(ZOMBIE_AUTOMATION)
        if not existing:
            client.create_automation(core)
            _say(f"automation {ZOMBIE_AUTOMATION!r} created (no heartbeat for {after_seconds}s → Crashed)")
            return
        current = existing[0]
        same = (
            len(existing) == 1 and current.enabled
            and current.trigger.model_dump() == core.trigger.model_dump()
            and [a.model_dump() for a in current.actions] == [a.model_dump() for a in core.actions]
        )
        if same:
            _say(f"automation {ZOMBIE_AUTOMATION!r} exists (no heartbeat for {after_seconds}s → Crashed)")
            return
        # Replaced rather than updated: the 3.8.8 client's update_automation sends a field its server refuses.
        for automation in existing:
            client.delete_automation(automation.id)
        client.create_automation(core)
        _say(f"automation {ZOMBIE_AUTOMATION!r} replaced (no heartbeat for {after_seconds}s → Crashed)")


def set_result_storage(slug: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    block_type, sep, name = slug.partition("/")
    if not sep:
        raise SystemExit(f"bootstrap: --result-storage takes a block slug like s3-bucket/results, not {slug!r}")
    with get_client(sync_client=True) as client:
        try:
            document = client.read_block_document_by_name(name, block_type, include_secrets=False)
        except ObjectNotFound:
            raise SystemExit(f"bootstrap: no block {slug!r}; create the storage block first (UI: Blocks → +)") from None
        client.update_server_default_result_storage(document.id)
    _say(f"default result storage of every run: {slug}")


def deploy(prefect_file: Path, pool: str, cron: str | None, timezone: str | None) -> None:
    """`prefect deploy --all` on prefect.yaml, with the pool, nightly cron and time zone given."""
    config = yaml.safe_load(prefect_file.read_text())
    for deployment in config.get("deployments", []):
        deployment.setdefault("work_pool", {})["name"] = pool
        if deployment.get("name") == "nightly-migrations":
            for schedule in deployment.get("schedules") or []:
                if cron:
                    schedule["cron"] = cron
                if timezone:
                    schedule["timezone"] = timezone
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="prefect-", delete=False) as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all", "--prefect-file", handle.name],
            cwd=prefect_file.parent, env={**os.environ, "PREFECT_CLI_PROMPT": "false"}, capture_output=True, text=True, check=False,
        )
    finally:
        os.unlink(handle.name)
    if proc.returncode != 0:
        raise SystemExit(f"bootstrap: prefect deploy failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    names = ", ".join(f"{d.get('name')}" for d in config.get("deployments", []))
    _say(f"deployed {names} to work pool {pool!r} (code from {prefect_file.parent})")


def bootstrap(options: Options) -> None:
    url = check_server()
    _say(f"server {url}")
    register_blocks()
    ensure_work_pool(options.pool)
    ensure_tag_limits(options.limits, options.reset_limits)
    ensure_zombie_automation(options.zombie_after_seconds)
    if options.result_storage:
        set_result_storage(options.result_storage)
    if options.deploy:
        deploy(options.prefect_file, options.pool, options.cron, options.timezone)
    _say(f"done; start a worker: prefect worker start --pool {options.pool} --type process")


def _limit(text: str) -> tuple[str, int]:
    name, sep, value = text.partition("=")
    if not sep or not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"--limit takes PROVIDER=N with N >= 1, e.g. aws=4 (got {text!r})")
    return name.strip(), int(value)


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m deployments.bootstrap", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", default=DEFAULT_POOL, help=f"process work pool to create and deploy to (default {DEFAULT_POOL})")
    parser.add_argument("--limit", type=_limit, action="append", default=[], metavar="PROVIDER=N",
                        help="concurrent tasks per provider, e.g. aws=3 (repeatable); default: the seeds' recommendation "
                             f"({', '.join(f'{k}={v}' for k, v in recommended_limits().items())}); existing limits are kept")
    parser.add_argument("--reset-limits", action="store_true", help="set every provider limit to its default, even existing ones")
    parser.add_argument("--zombie-after", type=int, default=90, metavar="SECONDS",
                        help="mark a flow run Crashed after this long without a heartbeat (default 90, minimum 60)")
    parser.add_argument("--result-storage", metavar="BLOCK_SLUG",
                        help="make this storage block (e.g. s3-bucket/hyperexport-results) every run's result storage; "
                             "needed when several worker hosts serve one pool")
    parser.add_argument("--cron", help="schedule of nightly-migrations (default in prefect.yaml: 0 1 * * *)")
    parser.add_argument("--timezone", help="time zone of that schedule, e.g. Europe/Berlin (default in prefect.yaml: UTC)")
    parser.add_argument("--prefect-file", type=Path, default=PREFECT_FILE, help="the prefect.yaml to deploy")
    parser.add_argument("--no-deploy", action="store_true", help="set the server up but deploy nothing")
    args = parser.parse_args(argv)
    return Options(
        pool=args.pool, limits=dict(args.limit), reset_limits=args.reset_limits, zombie_after_seconds=args.zombie_after,
        result_storage=args.result_storage, deploy=not args.no_deploy, cron=args.cron, timezone=args.timezone,
        prefect_file=args.prefect_file.resolve(),
    )


def main(argv: list[str] | None = None) -> int:
    bootstrap(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
