"""The ``checkpoint`` method: a production checkpoint named after the run freezes the VM's VHDX files (the VM
goes on writing to new .avhdx files); those frozen files are read in place, and the checkpoint is removed
afterwards (Remove-VMCheckpoint merges the .avhdx back), by the core's clean-up."""

from __future__ import annotations

import re

from pydantic import Field

from ...errors import InvalidInputError
from ..session import ExportSession
from .inventory import VmDescription, _Answer, as_list, parsed
from .powershell import HostError, HypervHost

PREFIX = "hyperexport-"
KIND = "checkpoint"
_RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def checked_run_id(run_id: str) -> str:
    if not _RUN_ID.match(run_id):
        raise InvalidInputError(f"run id {run_id!r} is not letters, digits, '-' and '_' (at most 64)")
    return run_id


def checkpoint_name(run_id: str) -> str:
    return PREFIX + checked_run_id(run_id)


class FrozenDrive(_Answer):
    controller_type: str
    controller: int
    location: int
    path: str = Field(max_length=32767)
    file_size: int | None = Field(default=None, ge=0)

    @property
    def slot(self) -> tuple[str, int, int]:
        return (self.controller_type.upper(), self.controller, self.location)


class Checkpoint(_Answer):
    id: str
    name: str
    drives: list[FrozenDrive] = Field(default_factory=list)


def take(host: HypervHost, vm: VmDescription, session: ExportSession, *, timeout: float) -> Checkpoint:
    """Checkpoint-VM (production only), recorded before it is asked for: a checkpoint made while the answer was
    lost is still found by its name and removed."""
    name = checkpoint_name(session.run_id)
    session.record(KIND, name, vm.id)
    try:
        answer = host.run("checkpoint", id=vm.id, name=name, timeout=timeout)
    except HostError as error:
        raise InvalidInputError(
            f"Hyper-V refused a production checkpoint of VM {vm.name!r}: {error.message or error.id}. Production "
            "checkpoints need the guest's backup (VSS) integration service running, and no pass-through or shared "
            "disks. Fix that, or migrate with export_method export.",
            field="source.export_method",
        ) from None
    return parsed(Checkpoint, answer, "Checkpoint-VM")


def find(host: HypervHost, run_id: str) -> list[tuple[str, str]]:
    """(vm id, checkpoint name) of every checkpoint run ``run_id`` made on the host."""
    answer = host.run("find_checkpoints", name=checkpoint_name(run_id)) or {}
    return [(str(c["vm"]), str(c["name"])) for c in as_list(answer.get("checkpoints")) if isinstance(c, dict) and "vm" in c]


def remove(host: HypervHost, run_id: str, vm_id: str, name: str) -> None:
    if name != checkpoint_name(run_id):
        raise InvalidInputError(f"checkpoint {name!r} is not the one run {run_id} makes ({checkpoint_name(run_id)}); left alone")
    host.run("remove_checkpoint", vm=vm_id, name=name)
