"""hyperexport command line: one VM migration, run as the migrate-vm Prefect flow.

With PREFECT_API_URL set, the run is recorded on that server (and shows in its
UI); without it, a temporary local server is started for the run, out of the
terminal's reach (hyperexport/cli_server.py, started before Prefect is imported), and stopped at exit.

SIGINT (Ctrl-C) or SIGTERM: every download and converter stops, subprocess
trees are ended, the flow run ends Cancelled, partial downloads stay for the
next run of the same command, and the command exits 128 + the signal number.
A second signal exits at once.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from . import cancel, procs
from .cli_server import TemporaryServer, configured_api_url
from .errors import CancelledError, HyperExportError, InvalidInputError, PermanentError
from .models import ConverterName, TargetFormat
from .providers.contract import CliFlag
from .providers.registry import get_provider, providers, registered_names

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
EXIT_INTERRUPTED = 128 + signal.SIGINT
INTERRUPTED = "hyperexport: interrupted; run the same command again to resume the download"

# The flag a MigrationRequest field is given with; the providers add theirs (Provider.flags), and any other
# source.KEY is --opt KEY=VALUE.
FLAGS = {
    "provider": "--provider",
    "export.output_dir": "--output",
    "export.connections": "--connections",
    "export.bandwidth_limit_bps": "--bandwidth-limit",
    "export.keep_cloud_artifacts": "--keep-cloud-artifacts",
    "export.stream": "--stream",
    "convert": "--convert",
    "converter": "--converter",
    "converter_config.binary_path": "--converter-binary",
    "converter_config.timeout_seconds": "--timeout",
    "converter_config.qemu_img_memory_bytes": "--qemu-img-memory",
    "convert_options.target_format": "--format",
    "convert_options.fix_guest": "--fix",
    "convert_options.dry_run": "--dry-run",
    "convert_options.compression_level": "--compress",
    "credentials_block": "--credentials-block",
    "kvm.domain": "--no-domain",
    "kvm.define_uri": "--define",
    "kvm.boot_check": "--boot-check",
    "kvm.boot_check_options.time_limit_seconds": "--boot-timeout",
}


def _provider_flags() -> dict[str, list[tuple[str, CliFlag]]]:
    """Every provider flag, with the providers that take it: ``--vm`` → [("local", <--vm source>)]."""
    found: dict[str, list[tuple[str, CliFlag]]] = {}
    for provider in providers():
        for flag in provider.flags:
            found.setdefault(flag.flag, []).append((provider.name, flag))
    return found


def flag_for(field: str) -> str:
    """How the command line names a MigrationRequest field: ``source.source`` → ``--vm``."""
    if field in FLAGS:
        return FLAGS[field]
    head, _, key = field.partition(".")
    if head == "source" and key:
        for flag, takers in _provider_flags().items():
            if any(f.option == key for _, f in takers):
                return flag
        return f"--opt {key}=..."
    return f"request field {field}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hyperexport",
        description="Migrate a VM to KVM: export its disks, write an Artifact Manifest v1.0, convert to qcow2 and validate.",
    )
    parser.add_argument("--provider", choices=registered_names(), help="where the VM is")
    parser.add_argument(
        "--manifest", type=Path, help="convert the disks of an existing Artifact Manifest v1.0 (instead of --provider)"
    )
    for flag, takers in _provider_flags().items():
        parser.add_argument(flag, dest=_dest(flag), metavar=takers[0][1].option.upper(), help="; ".join(f.help for _, f in takers))
    parser.add_argument(
        "--opt", action="append", default=[], metavar="KEY=VALUE", help="any other provider option (repeatable)"
    )
    parser.add_argument(
        "--cleanup-run", metavar="RUN_ID",
        help="remove what a given-up run left at the source, by its run id (the flow run's id); give the provider and "
        "the options it names for clean-up (aws: --region, and --opt bucket= for export objects)",
    )
    parser.add_argument("--output", type=Path, help="directory for disks, manifest, outputs and report")
    parser.add_argument("--convert", action="store_true", help="convert the exported disks for KVM")
    parser.add_argument("--format", default="qcow2", choices=[f.value for f in TargetFormat], help="output format")
    parser.add_argument("--converter", default="hyper2kvm", choices=[c.value for c in ConverterName])
    parser.add_argument("--converter-binary", type=Path, help="path to the converter binary (default: auto-detect)")
    parser.add_argument("--timeout", type=float, help="seconds the conversion may take before it is killed")
    parser.add_argument(
        "--qemu-img-memory", type=int, metavar="MIB",
        help="address space each qemu-img convert may take, in MiB (default 2048; 0: no limit, for images you trust)",
    )
    parser.add_argument("--fix", action="store_true", help="fix the guest for KVM (hyper2kvm, needs libguestfs)")
    parser.add_argument("--dry-run", action="store_true", help="plan the conversion, write no output disks")
    parser.add_argument("--compress", type=int, default=0, metavar="0-9", help="compress qcow2 output (0: no)")
    parser.add_argument("--connections", type=int, help="parallel connections per disk download")
    parser.add_argument("--bandwidth-limit", type=int, metavar="BYTES_PER_S", help="cap download speed")
    parser.add_argument(
        "--stream", action="store_true",
        help="write raw disks straight into the qcow2/raw output as they download (one pass, no staged copy; "
        "with --convert --converter qemu-img)",
    )
    parser.add_argument(
        "--keep-cloud-artifacts", action="store_true",
        help="keep the snapshots, images and export objects the run created (default: remove them)",
    )
    parser.add_argument("--credentials-block", help="name of the Prefect block with the provider's credentials")
    parser.add_argument("--no-domain", action="store_true", help="do not write the libvirt domain XML beside the disks")
    parser.add_argument("--define", metavar="URI", help="virsh define the domain on this libvirt URI, e.g. qemu:///system")
    parser.add_argument("--boot-check", action="store_true",
                        help="boot the converted VM under QEMU (disks never written) and fail unless it boots")
    parser.add_argument("--boot-timeout", type=float, metavar="SECONDS", help="time the boot check allows (default 180)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
    return parser


def _secrets_out_of_parameters(provider: str, source: dict) -> dict:
    """The provider's own reading of the options, with what it took out as secret (a URL's user:password) kept
    as SecretStr objects: the in-process run uses them, while the flow-run parameters stored on the server,
    task inputs and results show them masked."""
    from pydantic import SecretStr

    options = get_provider(provider).parse(source)
    typed = options.model_dump(exclude_unset=True, exclude_none=True)
    typed.update({name: value for name, value in options if isinstance(value, SecretStr)})
    return typed


def _dest(flag: str) -> str:
    return "provider_" + flag.lstrip("-").replace("-", "_")


def _source_options(args: argparse.Namespace, *, only: tuple[str, ...] | None = None) -> dict:
    """The provider options given on the command line: the chosen provider's flags, then every --opt.
    A flag of another provider is refused rather than ignored."""
    provider = get_provider(args.provider)
    source: dict = {}
    for flag, takers in _provider_flags().items():
        value = getattr(args, _dest(flag))
        if value is None:
            continue
        mine = [f for name, f in takers if name == provider.name]
        if not mine:
            users = ", ".join(name for name, _ in takers)
            raise InvalidInputError(f"{flag} is not an option of the {provider.name} provider (it is one of: {users})")
        source[mine[0].option] = value
    for pair in args.opt:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"--opt takes KEY=VALUE, got {pair!r}")
        source[key] = value
    if only is not None:
        source = {key: value for key, value in source.items() if key in only}
    return source


def request_from_args(args: argparse.Namespace):
    from .manifest import detect_provider
    from .migration import MigrationRequest
    from .validate_input import build

    if args.manifest is not None:
        args.provider = detect_provider(args.manifest.absolute())
        args.convert = True
        source: dict = {}
    elif args.provider is None:
        raise InvalidInputError("say where the VM is with --provider (or convert an existing manifest with --manifest)")
    else:
        source = _secrets_out_of_parameters(args.provider, _source_options(args))
    converter_config = {"binary_path": args.converter_binary} if args.converter_binary else {}
    if args.timeout:
        converter_config["timeout_seconds"] = args.timeout
    if args.qemu_img_memory is not None:
        converter_config["qemu_img_memory_bytes"] = args.qemu_img_memory * 2**20 if args.qemu_img_memory else None
    return build(
        MigrationRequest,
        provider=args.provider,
        source=source,
        export={
            "output_dir": args.output, "connections": args.connections, "bandwidth_limit_bps": args.bandwidth_limit,
            "keep_cloud_artifacts": args.keep_cloud_artifacts, "stream": args.stream,
        },
        convert=args.convert,
        converter=args.converter,
        convert_options={
            "target_format": args.format, "dry_run": args.dry_run, "fix_guest": args.fix, "compression_level": args.compress,
        },
        converter_config=converter_config,
        credentials_block=args.credentials_block,
        kvm=_kvm_options(args),
    )


def _kvm_options(args: argparse.Namespace) -> dict:
    kvm: dict = {"domain": not args.no_domain, "define_uri": args.define, "boot_check": args.boot_check}
    if args.boot_timeout:
        kvm["boot_check_options"] = {"time_limit_seconds": args.boot_timeout}
    return kvm


def _progress_bar():
    """A rich progress bar fed by every transfer's snapshots; returns (context manager, listener)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
        transient=False,
    )
    tasks: dict[str, TaskID] = {}

    def listener(snapshot) -> None:
        key = f"{snapshot.file_index}/{snapshot.total_files} {snapshot.file_name}"
        if key not in tasks:
            tasks[key] = bar.add_task(key, total=snapshot.total)
        bar.update(tasks[key], completed=snapshot.current)

    return bar, listener


def _cleanup_run(args: argparse.Namespace) -> int:
    from .migration import cleanup_run

    if args.provider is None:
        raise InvalidInputError("--cleanup-run needs the --provider of the run and the options that locate it (e.g. --region)")
    provider = get_provider(args.provider)
    credentials = None
    if args.credentials_block:
        from blocks import credentials_for  # Prefect, for the block only

        credentials = credentials_for(args.provider, args.credentials_block)
    source = _source_options(args, only=provider.cleanup_options)
    removed = cleanup_run(args.provider, source, args.cleanup_run, credentials)
    for resource in removed:
        print(f"removed: {resource}")
    print(f"run {args.cleanup_run}: {len(removed)} resource(s) removed")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.cleanup_run:
            return _cleanup_run(args)
        if args.output is None:
            raise InvalidInputError("--output is required: the directory for disks, manifest, outputs and report")
        request = request_from_args(args)
        return _run(request, show_progress=sys.stderr.isatty() and not args.no_progress, manifest=args.manifest)
    except CancelledError:
        print(INTERRUPTED, file=sys.stderr)
        return EXIT_INTERRUPTED
    except HyperExportError as error:
        from .validate_input import name_field

        print(f"hyperexport: error: {name_field(error, flag_for)}", file=sys.stderr)
        return EXIT_BAD_INPUT if isinstance(error, PermanentError) else EXIT_FAILED
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return EXIT_INTERRUPTED
    except RuntimeError as error:
        if "Prefect API server" not in str(error):
            raise
        print(
            f"hyperexport: error: {str(error).split(' stdout:')[0]} Start a server with 'prefect server start' "
            "and set PREFECT_API_URL (see the README), or retry on a less busy host.",
            file=sys.stderr,
        )
        return EXIT_FAILED


@dataclass
class _Interrupts:
    received: list[int]  # the signals received so far
    arm: Callable[[], None]  # (re)install the handlers


@contextlib.contextmanager
def _interruptible(on_second: Callable[[], None]) -> Iterator[_Interrupts]:
    """SIGINT/SIGTERM ask the run to stop; a second one exits at once."""
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        received.append(signum)
        if len(received) > 1:
            procs.terminate_all(grace_s=0.0)
            on_second()
            os._exit(128 + received[0])
        # os.write, not print: the main thread may be inside a print to stderr.
        os.write(2, b"\nhyperexport: interrupted; stopping (partial downloads are kept; a second Ctrl-C exits now)\n")
        cancel.request_cancel()
        # Not here: the main thread may hold the registry's lock; the trees end in a second or two.
        threading.Thread(target=procs.terminate_all, name="terminate-subprocesses", daemon=True).start()

    def arm() -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, handler)

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    arm()
    try:
        yield _Interrupts(received, arm)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _run(request, *, show_progress: bool, manifest: Path | None = None) -> int:
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    # Without PREFECT_API_URL a temporary server runs the flow; a busy host needs more than 20 s to start it.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # That server would report usage to Prefect: on a host without internet (most migration hosts) every run
    # would log "ERROR ... Failed to send telemetry". Users who want it set the variable to true.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    cancel.reset()  # a process may run several commands (tests call main() in-process)
    server = None
    if configured_api_url() is None:
        # Started before anything else: it comes up while Prefect is imported and the request is checked.
        # It stops when the process exits, after Prefect's log and event workers have sent what they hold
        # (they drain at thread shutdown, before atexit): stopped earlier, they would wait on it for ever.
        server = TemporaryServer().start()
        atexit.register(server.stop)
        os.environ["PREFECT_API_URL"] = server.api_url  # later commands of this process use it too
        print(f"hyperexport: starting a temporary Prefect server on {server.api_url.removesuffix('/api')} for this "
              "run (set PREFECT_API_URL to use a running server)", file=sys.stderr, flush=True)  # fmt: skip
    return _run_with_server(request, server, show_progress=show_progress, manifest=manifest)


def _run_with_server(request, server: TemporaryServer | None, *, show_progress: bool, manifest: Path | None) -> int:
    from .migration import conversion_plan, preflight

    # Bad input fails here, in a second, before Prefect is imported; the flow checks the request again.
    plan = conversion_plan(request) if manifest is not None else preflight(request)
    where = manifest if manifest is not None else plan.provider.describe(plan.source_options())
    print(f"hyperexport: {where} -> {plan.output_dir}", file=sys.stderr, flush=True)
    # Prefect is imported only here, never by the engine.
    from tasks.step import names

    with names(flag_for), _interruptible(server.kill if server else lambda: None) as interrupts:
        received = interrupts.received
        if server is not None:
            timeout = float(os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"])
            try:
                server.wait_ready(timeout)
            except CancelledError:
                pass
        if received:
            print(INTERRUPTED, file=sys.stderr)
            return 128 + received[0]
        state = _run_flow(request, show_progress=show_progress, manifest=manifest, rearm=interrupts.arm)
    if received or state.is_cancelled():
        print(INTERRUPTED, file=sys.stderr)
        return 128 + (received[0] if received else signal.SIGINT)
    report = state.result()  # a failed run raises its error here
    _print_report(report)
    return EXIT_OK if report.success else EXIT_FAILED


def _run_flow(request, *, show_progress: bool, manifest: Path | None, rearm: Callable[[], None]):
    from flows.convert_manifest import convert_manifest
    from flows.migrate_vm import migrate_vm

    from .progress import subscribe

    def on_running(flow, flow_run, state) -> None:
        # Prefect's engine puts its own SIGTERM handler in place for the run (it would crash the run, not stop it
        # cleanly); this hook runs inside that scope, in the main thread. Prefect restores ours after the run.
        rearm()

    unsubscribe = lambda: None  # noqa: E731
    bar = None
    if show_progress:
        bar, listener = _progress_bar()
        unsubscribe = subscribe(listener)
        bar.start()
    try:
        if manifest is not None:
            return convert_manifest.with_options(on_running=[on_running])(manifest.absolute(), request, return_state=True)
        return migrate_vm.with_options(on_running=[on_running])(request, return_state=True)
    finally:
        unsubscribe()
        if bar is not None:
            bar.stop()


def _print_report(report) -> None:
    from .report import render_markdown

    print(render_markdown(report))
    if report.conversion:
        for path in report.conversion.converted_files:
            print(f"output: {path}")
    if report.domain:
        print(f"domain: {report.domain.xml_path}")
        print("start it: " + "; ".join(report.domain.start_commands()))
    print(f"report: {report.report_path}")


if __name__ == "__main__":
    sys.exit(main())
