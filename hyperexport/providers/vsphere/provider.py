"""The ``vsphere`` provider: a VM of vCenter Server or ESXi, read from its datastore through a snapshot, or
exported through NFC.

``datastore`` (the default) works on running VMs: a snapshot named after the run id freezes the disks
(no memory; quiesced on request); each disk's flat extent, as that snapshot saw it, is read through the
datastore's HTTPS ``/folder`` endpoint with parallel, resumable Range requests carrying the session cookie.
With CBT on, only the areas ``QueryChangedDiskAreas(…, "*")`` lists are read. A VM that already had snapshots
is refused: its disks are chains of deltas, and their base alone is stale.

``nfc`` (powered-off VMs) exports through ExportVm's HttpNfcLease, kept alive, completed or aborted inside the
export (see nfc.py); the OVF descriptor goes beside the disks.

The snapshot is recorded in the export session the moment vSphere has taken it; the core removes it after the
download, or at once when the export fails, unless ``keep_cloud_artifacts``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...errors import AccessDeniedError, InvalidInputError, PermanentError, TransferError
from ...models import DiskFormat, DiskSource, DiskType, ExportOptions, ExportResult, Resource, VmInfo
from ..contract import CliFlag, Provider, TransferDefaults
from ..session import ExportSession
from . import metadata, nfc, snapshots
from .credentials import VsphereLogin, pyvmomi, require_login
from .datastore import FolderDiskSource, FolderLocation, flat_extent, folder_url, parse_datastore_path, read_descriptor, session_cookie
from .errors import translated
from .inventory import find_datacenter, find_vm, inventory_path
from .options import VsphereOptions

log = logging.getLogger(__name__)

NAME = "vsphere"
REMOVE_TIMEOUT = 3600.0


def _check(options: VsphereOptions) -> None:
    if not options.vm or not options.vm.strip():
        raise InvalidInputError(
            "give the VM to migrate: its name, inventory path (/DC/vm/folder/name), moid (vm-123) or instance UUID",
            field="source.vm",
        )
    if options.datacenter is not None and "/" in options.datacenter:
        raise InvalidInputError(
            f"{options.datacenter!r} is not a datacenter name; give the name alone (an inventory path goes in vm)",
            field="source.datacenter",
        )


def _datacenter_of(entity: Any) -> Any:
    vim, _ = pyvmomi()
    node = entity
    for _ in range(64):
        node = node.parent
        if node is None or isinstance(node, vim.Datacenter):
            return node
    return None


def _record(session: ExportSession[Any], vm: Any, snapshot_ids: list[str]) -> None:
    for snapshot_id in snapshot_ids:
        session.record("snapshot", snapshot_id, location=vm._moId)


def _file_stem(vm: VmInfo) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", vm.vm_name or vm.vm_id or "vm").strip("-.")[:64] or "vm"


def _export(session: ExportSession[Any], options: VsphereOptions, export_options: ExportOptions) -> ExportResult:
    login = require_login(session.credentials)
    with login.session() as service_instance:
        content = service_instance.RetrieveContent()
        vm = find_vm(content, options.vm or "", find_datacenter(content, options.datacenter))
        session.source = vm._moId
        with translated(f"reading the configuration of VM {vm._moId}"):
            datacenter = _datacenter_of(vm)
            path, power = inventory_path(vm), vm.runtime.powerState
        if options.export_method == "nfc":
            info, disks, extra = _export_nfc(vm, content, login, path, power, datacenter.name, options, export_options)
        else:
            info, disks, extra = _export_datastore(
                session, vm, service_instance, login, path, power, datacenter, options, export_options
            )
    return ExportResult(
        provider=NAME, export_method=options.export_method, vm=info, disks=disks,
        metadata={"host": login.address, "inventory_path": path, "power_state": power, **extra},
    )  # fmt: skip


def _export_datastore(
    session: ExportSession[Any], vm: Any, service_instance: Any, login: VsphereLogin, path: str, power: str,
    datacenter: Any, options: VsphereOptions, export_options: ExportOptions,
) -> tuple[VmInfo, list[DiskSource], dict[str, Any]]:
    with translated(f"reading the disks of VM {vm._moId}"):
        datacenter_path = inventory_path(datacenter).lstrip("/")
        current = metadata.disks(vm.config.hardware.device, vm.config.bootOptions)
    leftovers = snapshots.of_run(vm, session.run_id)
    if leftovers:  # an earlier attempt of this run left its snapshot: remove it, then the disks are no chain of ours
        content = service_instance.RetrieveContent()
        for snapshot_id in leftovers:
            resource = session.record("snapshot", snapshot_id, location=vm._moId)
            snapshots.remove(content, vm._moId, snapshot_id, session.run_id, timeout=REMOVE_TIMEOUT, interval=options.poll_seconds)
            session.forget(resource)
        with translated(f"reading the disks of VM {vm._moId}"):
            current = metadata.disks(vm.config.hardware.device, vm.config.bootOptions)
    for device in current:  # before the snapshot: a refused VM leaves nothing to roll back
        _refuse_chain(path, device)
    try:
        snapshot = snapshots.create(
            vm, session.run_id, quiesce=options.quiesce, timeout=export_options.export_timeout_seconds,
            interval=options.poll_seconds,
        )  # fmt: skip
    except BaseException:  # a dropped poll, a timeout or a cancel: vSphere may have taken the snapshot all the same
        try:
            _record(session, vm, snapshots.of_run(vm, session.run_id))
        except Exception as error:  # noqa: BLE001 - the create's error is the one to report; --cleanup-run finds it
            log.warning("could not look for the snapshot of run %s: %s", session.run_id, error)
        raise
    _record(session, vm, [snapshot._moId])
    log.info("snapshot %s of %s (%s) taken", snapshot._moId, path, power)
    with translated(f"reading the disks of snapshot {snapshot._moId}"):
        frozen = snapshot.config
        info = metadata.vm_info(vm, frozen, datacenter.name)
        devices = metadata.disks(frozen.hardware.device, frozen.bootOptions)
        cbt = bool(frozen.changeTrackingEnabled)
    if not devices:
        raise InvalidInputError(f"VM {path} has no virtual disks to migrate", field="source.vm")
    cookie, stem = session_cookie(service_instance), _file_stem(info)
    disks = []
    for i, device in enumerate(devices):
        _refuse_chain(path, device)
        descriptor_path = parse_datastore_path(device.file_name)
        descriptor = read_descriptor(login, cookie, folder_url(login, datacenter_path, descriptor_path), descriptor_path)
        extent = flat_extent(descriptor, descriptor_path, device.capacity_bytes)
        location = FolderLocation(
            url=folder_url(login, datacenter_path, extent), name=str(extent), vm=vm._moId, snapshot=snapshot._moId,
            device_key=device.key, cbt=cbt,
        )  # fmt: skip
        disks.append(_disk(i, device, location.encode(), DiskFormat.raw, f"{stem}-disk-{i}.raw"))
    return info, disks, {"snapshot": snapshot._moId, "cbt": cbt}


def _export_nfc(
    vm: Any, content: Any, login: VsphereLogin, path: str, power: str, datacenter: str, options: VsphereOptions,
    export_options: ExportOptions,
) -> tuple[VmInfo, list[DiskSource], dict[str, Any]]:
    if power != "poweredOff":
        raise InvalidInputError(
            f"VM {path} is {power}: the nfc export method (ExportVm) takes powered-off VMs only. Power it off, or use "
            "the datastore export method, which reads a running VM through a snapshot.",
            field="source.export_method",
        )
    vim, _ = pyvmomi()
    with translated(f"reading the configuration of VM {vm._moId}"):
        config = vm.config
        info = metadata.vm_info(vm, config, datacenter)
        devices = metadata.disks(config.hardware.device, config.bootOptions)
        controllers = {
            d.key: (type(d).__name__.rsplit(".", 1)[-1], int(d.busNumber))
            for d in config.hardware.device if isinstance(d, vim.vm.device.VirtualController)
        }  # fmt: skip
    if not devices:
        raise InvalidInputError(f"VM {path} has no virtual disks to migrate", field="source.vm")
    stem = _file_stem(info)
    files, ovf = nfc.export_disks(vm, content, login, devices, controllers, export_options, stem, interval=options.poll_seconds)
    disks = [_disk(i, device, str(file), DiskFormat.vmdk, file.name) for i, (device, file) in enumerate(zip(devices, files))]
    return info, disks, {"ovf": str(ovf)}


def _disk(i: int, device: metadata.DiskDevice, location: str, fmt: DiskFormat, file_name: str) -> DiskSource:
    return DiskSource(
        id=f"disk-{i}", location=location, format=fmt, size_bytes=device.capacity_bytes if fmt is DiskFormat.raw else None,
        virtual_size_bytes=device.capacity_bytes, disk_type=DiskType.boot if i == 0 else DiskType.data,
        boot_order_hint=i, label=device.label, file_name=file_name,
    )  # fmt: skip


def _refuse_chain(path: str, device: metadata.DiskDevice) -> None:
    if len(device.chain) > 1:
        raise InvalidInputError(
            f"VM {path} already has snapshots: {device.label} is a chain of {len(device.chain)} files (a base disk and "
            f"{len(device.chain) - 1} delta(s)), and its base alone would lose every write made since the first "
            "snapshot. Delete the VM's snapshots in vSphere (Snapshots > Delete All consolidates them) and run again.",
            field="source.vm",
        )


class VsphereProvider(Provider[VsphereOptions, VsphereLogin]):
    """VMs of vCenter Server or ESXi. Credentials: a VsphereLogin (the vSphere credentials block)."""

    name = NAME
    title = "VMware vSphere"
    options_type = VsphereOptions
    credentials_type = VsphereLogin
    extra = "vsphere"
    flags = (
        CliFlag(flag="--vm", option="vm", help="VM name, inventory path, moid (vm-123) or instance UUID (vsphere)"),
        CliFlag(flag="--datacenter", option="datacenter", help="datacenter to look in (vsphere)"),
        CliFlag(flag="--export-method", option="export_method", help="datastore (default) or nfc (vsphere)"),
    )
    label_options = ("vm",)
    cleanup_options = ("datacenter",)
    recommended_limit = 4  # vCenter serialises snapshot tasks per host; a few VMs at a time
    # ESXi throttles each connection (Proxmox measured 445 Mbit/s on one, 730-770 Mbit/s with 8).
    transfer = TransferDefaults(connections=8, chunk_size=16 * 2**20)

    def check(self, options: VsphereOptions, export: ExportOptions) -> None:
        _check(options)

    def describe(self, options: VsphereOptions) -> str:
        where = f" in datacenter {options.datacenter}" if options.datacenter else ""
        return f"vsphere VM {options.vm}{where} via {options.export_method}"

    def export(self, session: ExportSession[VsphereLogin], options: VsphereOptions, export: ExportOptions) -> ExportResult:
        return _export(session, options, export)

    def open_disk(
        self, disk: DiskSource, options: VsphereOptions, credentials: VsphereLogin | None
    ) -> FolderDiskSource | Path:
        if disk.location.startswith("/"):  # an nfc export: downloaded by the export under its lease
            local = Path(disk.location)
            if local.parent.name != "nfc" or not local.is_file() or local.is_symlink():
                raise InvalidInputError(f"disk {disk.id} at {disk.location!r} is not a disk an nfc export downloaded")
            return local
        login = require_login(credentials)
        return FolderDiskSource(login, FolderLocation.decode(disk.location, login))

    def remove(
        self, run_id: str, resources: Sequence[Resource], options: VsphereOptions, credentials: VsphereLogin | None
    ) -> list[Resource]:
        """Remove the run's snapshots (each only if it still carries the run's name)."""
        if not resources:
            return []
        login = require_login(credentials)
        removed: list[Resource] = []
        failed: list[str] = []
        errors: list[Exception] = []
        with login.session() as service_instance:
            content = service_instance.RetrieveContent()
            for resource in resources:
                if resource.kind != "snapshot" or not resource.location:
                    failed.append(f"{resource} (not a snapshot of this provider)")
                    errors.append(InvalidInputError("not a snapshot"))
                    continue
                try:
                    snapshots.remove(content, resource.location, resource.id, run_id, timeout=REMOVE_TIMEOUT,
                                     interval=options.poll_seconds)  # fmt: skip
                except Exception as error:  # noqa: BLE001 - every resource gets its attempt; the failures are named below
                    failed.append(f"{resource}: {error}")
                    errors.append(error)
                else:
                    removed.append(resource)
        if failed:
            message = f"could not remove {len(failed)} resource(s) of run {run_id}: " + "; ".join(failed)
            if all(isinstance(error, AccessDeniedError) for error in errors):
                raise AccessDeniedError(message, field="credentials_block")  # no retry grants the privilege
            if all(isinstance(error, PermanentError) for error in errors):
                raise InvalidInputError(message)
            raise TransferError(message)
        return removed

    def run_resources(self, run_id: str, options: VsphereOptions, credentials: VsphereLogin | None) -> list[Resource]:
        """The snapshots named after ``run_id``, on every VM (of the datacenter, when given)."""
        login = require_login(credentials)
        with login.session() as service_instance:
            content = service_instance.RetrieveContent()
            root = find_datacenter(content, options.datacenter) or content.rootFolder
            found = snapshots.find_run(content, root, run_id)
        return [Resource(kind="snapshot", id=snapshot, location=vm) for vm, snapshot in found]
