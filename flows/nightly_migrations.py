"""The nightly-migrations flow: one migrate-vm flow run per VM of a migration plan.

The plan comes from a Prefect variable (JSON; the deployment's default), or
instead from a YAML/JSON file on the worker, a ``hyperexport-migration-plan``
block or the ``plan`` parameter itself. Every VM is
checked first (provider, options, credentials block); one bad entry refuses
the whole plan before any run starts. Each VM then gets its own migrate-vm
flow run of the ``deployment``, linked to this run: it shows, fails and is
retried on its own in the UI, and the tag concurrency limits cap how many
touch a provider at once across all workers. This run then waits (up to
``wait_hours``; 0: not at all) for every VM's run to end and sums the plan up
in its ``nightly-summary`` table artifact (``flows.plan_status`` prints the
same table at any time); it fails when a VM's run did not complete.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.states import Failed

from blocks import check_credentials_block
from blocks.plan import MigrationPlan, MigrationPlanBlock
from hyperexport.errors import HyperExportError, InvalidInputError
from hyperexport.providers.registry import get_provider
from hyperexport.validate_input import build, name_field

from .migrate_vm import vm_label
from .plan_status import as_table, counts, wait_until_ended

DEFAULT_PLAN_VARIABLE = "hyperexport-nightly-plan"


def load_plan(
    plan: MigrationPlan | None = None,
    plan_file: str | None = None,
    plan_variable: str | None = None,
    plan_block: str | None = None,
) -> tuple[str, MigrationPlan]:
    """The plan and a description of where it came from.

    ``plan``, ``plan_file`` or ``plan_block`` (at most one) win over ``plan_variable``, the deployment's default,
    so that a custom run from the UI only fills the source it wants.
    """
    explicit = {k: v for k, v in {"plan": plan, "plan_file": plan_file, "plan_block": plan_block}.items() if v}
    if len(explicit) > 1:
        raise InvalidInputError(f"give the migration plan in one of plan, plan_file or plan_block, not {' and '.join(explicit)}")
    if not explicit and not plan_variable:
        raise InvalidInputError("no migration plan given; set plan_variable, plan_file, plan_block or plan")
    if plan is not None:
        return "the plan parameter", plan
    if plan_block:
        where = f"plan block {plan_block!r}"
        try:
            block = MigrationPlanBlock.load(plan_block)
        except ValueError:
            raise InvalidInputError(
                f"{where} does not exist; create a 'Hyperexport Migration Plan' block with that name (UI: Blocks → +)"
            ) from None
        return where, block.plan()
    if plan_file:
        path = Path(plan_file).expanduser()
        where = f"plan file {path}"
        if not path.is_file():
            raise InvalidInputError(f"{where} does not exist on this worker; check the path (plan_file)")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            raise InvalidInputError(f"{where} is not valid YAML or JSON: {error}") from None
    else:
        from prefect.variables import Variable

        where = f"Prefect variable {plan_variable!r}"
        data = Variable.get(plan_variable, default=None)
        if data is None:
            raise InvalidInputError(f"{where} does not exist; create it (UI: Variables → +) with the plan as JSON")
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                raise InvalidInputError(f"{where} holds text that is not JSON; store the plan as a JSON object") from None
    if isinstance(data, list):
        data = {"vms": data}
    if not isinstance(data, dict):
        raise InvalidInputError(f"{where} must hold an object with a 'vms' list, not {type(data).__name__}")
    try:
        return where, build(MigrationPlan, data)
    except InvalidInputError as error:
        raise InvalidInputError(f"{where}: {error}") from None


def check_plan(plan: MigrationPlan, where: str) -> None:
    """Refuse the whole plan, naming every bad VM, before any run starts."""
    if not plan.vms:
        raise InvalidInputError(f"the migration plan in {where} lists no VMs; add at least one entry under 'vms'")
    problems = []
    for index, request in enumerate(plan.vms):
        try:
            provider = get_provider(request.provider.value)
            provider.check(provider.parse(request.source), request.export)
            check_credentials_block(provider.name, request.credentials_block)
        except HyperExportError as error:
            name_field(error, lambda field, i=index: f"plan field vms[{i}].{field}")
            problems.append(f"vms[{index}] ({request.provider.value} {vm_label(request)}): {error}")
    if problems:
        raise InvalidInputError(f"the migration plan in {where} was refused, no VM was started: " + "; ".join(problems))


def _check_deployment(name: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(name)
        except ObjectNotFound:
            raise InvalidInputError(
                f"deployment {name!r} does not exist; run the bootstrap (python -m deployments.bootstrap) or fix 'deployment'"
            ) from None


@flow(name="nightly-migrations", log_prints=True, validate_parameters=True)
def nightly_migrations(
    plan_variable: str | None = DEFAULT_PLAN_VARIABLE,
    plan_file: str | None = None,
    plan_block: str | None = None,
    plan: MigrationPlan | None = None,
    deployment: str = "migrate-vm/migrate-vm",
    wait_hours: float = 20.0,
) -> list[str]:
    """Start one migrate-vm flow run per VM of the plan, then sum their outcome up; returns their flow run ids.

    Args:
        plan_variable: Name of a Prefect variable holding the plan as JSON ({"vms": [...]}).
        plan_file: Path, on the worker, of a YAML or JSON plan file.
        plan_block: Name of a Hyperexport Migration Plan block.
        plan: The plan itself, one entry per VM.
        deployment: The migrate-vm deployment that runs each VM.
        wait_hours: How long to wait for the VMs' runs to end before summing the plan up (0: do not wait).
    """
    from prefect.deployments import run_deployment
    from prefect.runtime import flow_run
    from prefect.utilities.urls import url_for

    logger = get_run_logger()
    where, loaded = load_plan(plan, plan_file, plan_variable, plan_block)
    check_plan(loaded, where)
    _check_deployment(deployment)
    parent = flow_run.get_id() or "local"
    rows, ids = [], []
    for index, request in enumerate(loaded.vms):
        run = run_deployment(
            deployment,
            parameters={"request": request.model_dump(mode="json")},
            timeout=0,
            as_subflow=True,
            idempotency_key=f"nightly-{parent}-{index}",  # a retried nightly run starts no VM twice
        )
        ids.append(str(run.id))
        link = url_for("flow-run", obj_id=run.id) or ""
        rows.append(f"| {index} | {request.provider.value} | {vm_label(request)} | [{run.name}]({link}) | `{run.id}` |")
        logger.info("started %s for %s VM %s", run.name, request.provider.value, vm_label(request))
    create_markdown_artifact(
        key="nightly-migrations",
        markdown="\n".join(
            [f"# Nightly migrations from {where}", "", "| # | provider | VM | flow run | id |", "|---|---|---|---|---|", *rows]
        ),
        description=f"{len(ids)} migrate-vm run(s) started",
    )
    if wait_hours <= 0 or parent == "local":
        return ids
    summary = wait_until_ended(parent, expected=len(ids), hours=wait_hours)
    create_table_artifact(key="nightly-summary", table=as_table(summary), description=f"Nightly plan from {where}: {counts(summary)}")
    logger.info("plan summed up: %s", counts(summary))
    if any(row.state != "Completed" for row in summary) or len(summary) < len(ids):
        return Failed(message=f"not every VM was migrated: {counts(summary)} (see the nightly-summary artifact)")
    return ids
