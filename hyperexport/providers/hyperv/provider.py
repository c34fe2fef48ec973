"""The ``hyperv`` provider: a VM on a Hyper-V host, over WinRM (PowerShell) and SMB, to one VHDX per disk.

Two export methods:

``checkpoint`` (default)
    A production checkpoint named ``hyperexport-RUN_ID`` freezes the VM's VHDX files while it runs; they are
    read in place over SMB (through ``share`` when they lie under it, else the admin share of their drive) and
    the checkpoint is removed after the download (checkpoint.py).
``export``
    Export-VM into ``SHARE\\hyperexport\\RUN_ID``; the exported VHDX files are read from there and the directory
    is removed after the download (exported.py).

Every PowerShell script is fixed text with its arguments passed as data (scripts.py): a VM name can never run
code. A VM with a differencing chain (.avhdx: it has checkpoints) or a pass-through disk is refused with what
to do (inventory.py). Disks are read in parallel ranges over SMB (smb.py); the boot disk comes first.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from ...errors import InvalidInputError, TransferError, UnsafeImageError
from ...models import DiskFormat, DiskSource, DiskType, ExportOptions, ExportResult, Resource
from ..contract import CliFlag, Provider, TransferDefaults
from ..session import ExportSession
from . import checkpoint as hv_checkpoint, exported as hv_exported
from .credentials import HypervLogin, smbclient_module, winrm_module
from .inventory import Drive, VmDescription, check_access, describe_vm, find_vm, refuse_unreadable
from .options import HypervOptions
from .powershell import HypervHost
from .smb import SmbFileSource, SmbPath, SmbShare, host_path_on_share

log = logging.getLogger(__name__)

NAME = "hyperv"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE_PATH = re.compile(r"^[A-Za-z]:\\")


def _check(options: HypervOptions) -> None:
    if bool(options.vm) == bool(options.vm_id):
        raise InvalidInputError("give the VM's name (vm) or its id (vm_id) for the hyperv provider, one of them", field="source.vm")
    if options.vm_id and not _GUID.match(options.vm_id):
        raise InvalidInputError(f"{options.vm_id!r} is not a VM id (a GUID, as Get-VM | Select Id shows)", field="source.vm_id")
    if options.vm and _CONTROL.search(options.vm):
        raise InvalidInputError("the VM name holds control characters, which no Hyper-V VM name has", field="source.vm")
    if options.share:
        SmbPath.from_unc(options.share, "share")
    elif options.export_method == "export":
        raise InvalidInputError("the export method needs the share to export to, as \\\\host\\share", field="source.share")
    if options.share_local_path is not None:
        if not options.share:
            raise InvalidInputError("share_local_path is the local directory of share: give the share too", field="source.share")
        if not _DRIVE_PATH.match(options.share_local_path) or _CONTROL.search(options.share_local_path):
            raise InvalidInputError(f"{options.share_local_path!r} is not a drive path like E:\\exports", field="source.share_local_path")


def _login(credentials: Any | None) -> HypervLogin:
    if isinstance(credentials, HypervLogin):
        return credentials
    if credentials is None:
        raise InvalidInputError(
            "the hyperv provider needs a Hyper-V credentials block (the WinRM host, user and password)", field="credentials_block"
        )
    raise InvalidInputError(f"hyperv credentials must be a HypervLogin (from a Hyper-V credentials block), not {type(credentials).__name__}")


def host_share(options: HypervOptions, login: HypervLogin) -> SmbPath | None:
    """The share, which must be on the Hyper-V host itself: it is the host that exports to it and tells where it
    lies on its disks, and the login is sent to no other server."""
    if not options.share:
        return None
    share = SmbPath.from_unc(options.share, "share")
    if share.server.lower() != login.host.lower():
        raise InvalidInputError(
            f"the share {options.share} is on {share.server!r}, not on the Hyper-V host {login.host!r}: give a share "
            "of the host itself, named with the same host name as the credentials block's host",
            field="source.share",
        )
    return share


def _stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")[:64] or "vm"


def _disk(i: int, vm: VmDescription, drive: Drive, path: SmbPath, size: int | None) -> DiskSource:
    fmt = DiskFormat.vhd if path.parts[-1].lower().endswith(".vhd") else DiskFormat.vhdx
    return DiskSource(
        id=f"disk-{i}", location=path.location, format=fmt, size_bytes=size, virtual_size_bytes=drive.size,
        disk_type=DiskType.boot if i == 0 else DiskType.data, boot_order_hint=i, label=f"{drive.where} {path.parts[-1]}",
        file_name=f"{_stem(vm.name)}-disk-{i}.{fmt.value}",
    )  # fmt: skip


def _checkpoint_disks(host: HypervHost, vm: VmDescription, options: HypervOptions, session: ExportSession[Any],
                      export: ExportOptions) -> list[DiskSource]:  # fmt: skip
    share = host_share(options, host.login)
    local = hv_exported.share_local_path(host, share, options.share_local_path) if share else None
    server = host.login.host
    drives = vm.ordered_drives()
    # The shares answer before the VM is touched: a wrong SMB password must not cost a checkpoint.
    smb = SmbShare(host.login)
    try:
        for root in {SmbPath(p.server, p.share) for p in (host_path_on_share(d.path or "", share, local, server) for d in drives)}:
            smb.check_readable(root)
    finally:
        smb.close()
    taken = hv_checkpoint.take(host, vm, session, timeout=export.export_timeout_seconds)
    frozen = {d.slot: d for d in taken.drives}
    disks = []
    for i, drive in enumerate(drives):
        if drive.slot not in frozen:
            raise TransferError(f"checkpoint {taken.name} of VM {vm.name!r} has no disk at {drive.where}; run again")
        file = frozen[drive.slot]
        disks.append(_disk(i, vm, drive, host_path_on_share(file.path, share, local, server), file.file_size))
    return disks


def _export_disks(host: HypervHost, vm: VmDescription, options: HypervOptions, session: ExportSession[Any],
                  export: ExportOptions) -> list[DiskSource]:  # fmt: skip
    share = host_share(options, host.login)
    assert share is not None  # _check: the export method needs a share
    local = hv_exported.share_local_path(host, share, options.share_local_path)
    smb = SmbShare(host.login)
    try:
        smb.check_readable(share)
        if smb.exists(target := hv_exported.run_directory(share, session.run_id)):
            raise InvalidInputError(
                f"{target.unc} exists before this run made it: hyperexport exports only into a new directory of its "
                "own (whoever made that one chose what the clean-up would remove). Remove it on the host and run again.",
                field="source.share",
            )
    finally:
        smb.close()
    files = hv_exported.export(host, vm, share, local, session, timeout=export.export_timeout_seconds)
    by_name: dict[str, list[tuple[SmbPath, int]]] = {}
    for path, size in files:
        by_name.setdefault(path.parts[-1].lower(), []).append((path, size))
    disks = []
    for i, drive in enumerate(vm.ordered_drives()):
        name = (drive.path or "").rsplit("\\", 1)[-1].lower()
        found = by_name.get(name, [])
        if len(found) != 1:
            raise InvalidInputError(
                f"Export-VM of {vm.name!r} wrote {len(found)} files named {name!r} (the disk at {drive.where}); "
                "expected one. Give the VM's disks distinct file names, or use the checkpoint method."
            )
        disks.append(_disk(i, vm, drive, *found[0]))
    return disks


class HypervProvider(Provider[HypervOptions, HypervLogin]):
    """VMs on a Hyper-V host: PowerShell over WinRM, VHDX files over SMB. Credentials: a HypervLogin."""

    name = NAME
    title = "Microsoft Hyper-V"
    options_type = HypervOptions
    credentials_type = HypervLogin
    extra = "hyperv"
    flags = (
        CliFlag(flag="--vm", option="vm", help="VM name on the Hyper-V host, matched exactly (hyperv)"),
        CliFlag(flag="--vm-id", option="vm_id", help="VM id (GUID) on the Hyper-V host (hyperv)"),
        CliFlag(flag="--export-method", option="export_method", help="checkpoint (default) or export (hyperv)"),
    )
    label_options = ("vm", "vm_id")
    cleanup_options = ("share", "share_local_path")
    recommended_limit = 2  # a host checkpoints and exports one VM at a time well; SMB reads share its disks
    # SMB2 reads of 8 MiB ranges, 8 at once: a 10 GbE link filled by one disk without flooding the host's disks.
    transfer = TransferDefaults(connections=8, chunk_size=8 * 2**20)

    def check(self, options: HypervOptions, export: ExportOptions) -> None:
        _check(options)

    def describe(self, options: HypervOptions) -> str:
        vm = f"VM {options.vm!r}" if options.vm else f"VM id {options.vm_id}"
        return f"hyperv {vm} via {options.export_method}" + (f" (share {options.share})" if options.share else "")

    def export(self, session: ExportSession[HypervLogin], options: HypervOptions, export: ExportOptions) -> ExportResult:
        winrm_module(), smbclient_module()  # a missing SDK says which extra to install, before anything else
        host = HypervHost(_login(session.credentials))
        check_access(host)
        match = find_vm(host, options.vm, options.vm_id)
        session.source = match.id
        vm = describe_vm(host, match.id)
        refuse_unreadable(vm, options.export_method)
        if options.export_method == "checkpoint":
            disks = _checkpoint_disks(host, vm, options, session, export)
        else:
            disks = _export_disks(host, vm, options, session, export)
        log.info("VM %r (%s): %d disk(s), boot disk %s", vm.name, vm.id, len(disks), disks[0].label)
        return ExportResult(
            provider=NAME, export_method=options.export_method, vm=vm.vm_info(), disks=disks,
            metadata={"host": host.login.host, "vm_id": vm.id, "generation": vm.generation, "state": vm.state},
        )  # fmt: skip

    def open_disk(self, disk: DiskSource, options: HypervOptions, credentials: HypervLogin | None) -> SmbFileSource:
        login = _login(credentials)
        path = SmbPath.from_location(disk.location)
        if path.server.lower() != login.host.lower():
            raise UnsafeImageError(f"disk location {disk.location!r} is not on the Hyper-V host {login.host!r}; refusing it")
        return SmbFileSource(login, path, expected_size=disk.size_bytes)

    def remove(self, run_id: str, resources: Sequence[Resource], options: HypervOptions,
               credentials: HypervLogin | None) -> list[Resource]:  # fmt: skip
        """Remove the run's checkpoint (by its name, hyperexport-RUN_ID) and export directory (…\\hyperexport\\RUN_ID)."""
        if not resources:
            return []
        from .cleanup import remove

        return remove(HypervHost(_login(credentials)), run_id, resources)

    def run_resources(self, run_id: str, options: HypervOptions, credentials: HypervLogin | None) -> list[Resource]:
        """The checkpoints named after ``run_id`` on the host and, when ``share`` is given, its export directory."""
        from .cleanup import run_resources

        login = _login(credentials)
        return run_resources(HypervHost(login), run_id, host_share(options, login))
