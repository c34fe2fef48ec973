"""The migrate-vm flow: orders the tasks, nothing more.

Every task that touches the provider carries its tag (``local``, ``aws``, ...),
so the server's tag concurrency limits cap how many run at once across all
workers. Parameters are checked before any task starts, the credentials block
included. The export's source-side resources (snapshots, export objects) are
removed once every disk is downloaded; when a download fails with an error a
retry can heal, they are kept so that a retry from the dashboard resumes the
download instead of exporting again. A run interrupted by SIGINT/SIGTERM of the
command line ends Cancelled; its partial downloads stay for the next run.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from prefect import flow, get_run_logger, tags
from prefect.states import Cancelled

from blocks import check_credentials_block
from blocks.plan import RequestForm
from hyperexport import cancel, migration, pipeline
from hyperexport.errors import HyperExportError
from hyperexport.providers.registry import get_provider
from hyperexport.report import MigrationReport, StepTiming
from tasks import (
    check_boot,
    cleanup_export,
    convert_disks,
    detect_provider,
    download_disk,
    export_vm,
    generate_manifest,
    publish_report,
    validate_disks,
    write_domain,
)
from tasks.step import INTERRUPTED, named

from flows.run_names import made_up


def vm_label(request: object) -> str:
    """A short name for the VM of a request (a dict or a MigrationRequest), for run names and logs: the
    provider's label (a file name, an instance id), never a URL's user, password or query."""
    if isinstance(request, dict):
        provider_name, source = request.get("provider"), request.get("source") or {}
    else:
        provider_name, source = getattr(request, "provider", None), getattr(request, "source", {})
    try:
        provider = get_provider(str(getattr(provider_name, "value", provider_name)))
        return provider.label(provider.parse(source))
    except HyperExportError:
        return "vm"


def _run_name() -> str:
    """The run's name: the one it was created with, unless that is a name Prefect made up (``run_names``; then
    ``migrate-<provider>-<vm>-<UTC time>``). Prefect calls this each time the run starts, a retry included:
    a name typed in the UI's Run Name field, or given as run_deployment(flow_run_name=...), is kept."""
    from prefect.runtime import flow_run

    current = flow_run.name
    if current and not made_up(current):
        return current
    request = flow_run.parameters.get("request") or {}
    provider = request.get("provider", "vm") if isinstance(request, dict) else getattr(request, "provider", "vm")
    provider = getattr(provider, "value", provider)
    return f"migrate-{provider}-{vm_label(request)}-{datetime.now(UTC):%Y%m%d-%H%M%S}"


def check_request(request: migration.MigrationRequest) -> migration.ResolvedPlan:
    """Everything that can be refused before work starts (the engine's preflight and the credentials block);
    returns the plan every task takes."""
    try:
        plan = migration.preflight(request)
        check_credentials_block(request.provider.value, request.credentials_block)
        return plan
    except HyperExportError as error:
        raise named(error)  # noqa: B904 - the same exception, its message completed


@flow(name="migrate-vm", flow_run_name=_run_name, log_prints=True, validate_parameters=True, persist_result=True)
def migrate_vm(request: RequestForm) -> MigrationReport:  # type: ignore[valid-type]
    """Migrate one VM to KVM: export, download, manifest, detect provider, convert, validate, report.

    Args:
        request: The VM (provider and source options), where its disks go, how to convert them, and the name of
            the credentials block to use (none for local).
    """
    try:
        return _migrate(request)
    except Exception:
        if cancel.cancelled():
            return Cancelled(message=INTERRUPTED)
        raise


def _migrate(request: migration.MigrationRequest) -> MigrationReport:
    logger = get_run_logger()
    started = datetime.now(UTC)
    plan = check_request(request)
    provider = request.provider.value
    timings: list[StepTiming] = []
    clock = time.monotonic()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.monotonic()
        timings.append(StepTiming(step=step, seconds=now - clock))
        clock = now

    with tags(provider):
        export = export_vm(plan)
        lap("export")
        disks = _download(plan, export)
        lap("download")
        cleanup_export(plan, export)
        disks, manifest_path, conversion, validation, domain, boot = _after_download(plan, export, disks, lap)
    report = migration.build_report(
        plan, export, disks, manifest_path, conversion, validation, started=started, timings=timings,
        domain=domain, boot=boot,
    )
    report = publish_report(report, request.output_dir)
    logger.info("migration of %s finished: %s", export.vm.vm_name, "success" if report.success else "failed")
    return report


def _download(plan: migration.ResolvedPlan, export):
    """Every disk in parallel; on failure, clean the export up only if a retry cannot help."""
    futures = [download_disk.submit(plan, export, i) for i in range(len(export.disks))]
    try:
        return [f.result() for f in futures]
    except Exception as error:
        if pipeline.clean_after_failed_download(export, error):
            cleanup_export(plan, export)
        else:
            get_run_logger().warning("%s", pipeline.kept_for_retry(plan.provider, export))
        raise


def _after_download(plan: migration.ResolvedPlan, export, disks, lap):
    """Manifest, detect, convert, validate, domain, boot check."""
    request = plan.request
    manifest_path = generate_manifest(plan, export, disks)
    lap("manifest")
    detect_provider(manifest_path, request.provider)
    lap("detect")
    conversion = validation = domain = boot = None
    if request.convert:
        conversion = convert_disks(plan, manifest_path)
        lap("convert")
        if not request.convert_options.dry_run:
            validation = validate_disks(plan, disks, conversion)
            lap("validate")
            domain = write_domain(plan, manifest_path, disks)
            lap("domain")
            boot = check_boot(plan, manifest_path, disks)
            lap("boot-check")
    return disks, manifest_path, conversion, validation, domain, boot
