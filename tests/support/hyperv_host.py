"""A fake Hyper-V host for the hyperv tests: an inventory of VMs whose disks are real VHDX files in the Samba
share directories, answering the provider's PowerShell scripts as Hyper-V would.

A script is recognised by its fixed text only (the prelude and one body of scripts.SCRIPTS, the base64 JSON
arguments aside); its values are taken from the decoded arguments. Anything else is answered as PowerShell
answers an unknown command, and recorded like every script received (``received``): the injection test reads
that record.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyperexport.providers.hyperv.scripts import ARGUMENTS_MARK, BODY_MARK, PRELUDE, SCRIPTS

_BLOB = re.compile(r"FromBase64String\('([A-Za-z0-9+/=]*)'\)")
OUT_OF_SPACE = -2147024784  # 0x80070070, ERROR_DISK_FULL


class Refused(Exception):
    """A cmdlet's terminating error: what the prelude's catch block writes."""

    def __init__(self, message: str, *, category: str = "InvalidOperation", id: str = "", hresult: int = -2146233079):
        super().__init__(message)
        self.category, self.id, self.hresult = category, id or f"{category},Microsoft.HyperV.PowerShell", hresult


@dataclass
class FakeDisk:
    controller_type: str
    controller: int
    location: int
    path: str | None  # a host path (C:\...), None for a pass-through disk
    virtual_size: int = 0
    disk_number: int | None = None
    parent: str | None = None  # a differencing disk's parent


@dataclass
class FakeVm:
    name: str
    disks: list[FakeDisk]
    generation: int = 2
    boot: tuple[str, int, int] | None = None  # the firmware's first boot disk (generation 2)
    processors: int = 2
    memory_bytes: int = 4 * 2**30
    secure_boot: bool = True
    nics: list[tuple[str, str, str]] = field(default_factory=list)  # name, MAC (00155D...), switch
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    state: str = "Running"
    checkpoint_type: str = "Production"
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    checkpoint_refusal: str | None = None  # Checkpoint-VM fails with this message


class FakeHost:
    def __init__(self, drives: dict[str, Path], shares: dict[str, str]) -> None:
        self.drives = drives  # "C" -> the directory that is C:\ (a Samba share's path)
        self.shares = shares  # SMB share name -> its host path
        self.vms: list[FakeVm] = []
        self.identity = {"user": "HV01\\migrator", "computer": "HV01", "hyperv_admin": True, "administrator": False}
        self.export_space: int | None = None  # bytes Export-VM may write before the volume is full
        self.denied: set[str] = set()  # scripts whose cmdlets the authorization policy refuses
        self.received: list[str] = []  # every script, decoded, in order
        self.lock = threading.RLock()

    # Paths.

    def local(self, host_path: str) -> Path:
        drive, _, rest = host_path.partition(":\\")
        return self.drives[drive.upper()].joinpath(*[p for p in rest.split("\\") if p])

    def _vm(self, vm_id: str) -> FakeVm:
        for vm in self.vms:
            if vm.id.lower() == str(vm_id).lower():
                return vm
        raise Refused(f"Hyper-V was unable to find a virtual machine with id \"{vm_id}\".", category="ObjectNotFound")

    # The exchange.

    def run(self, command: str) -> tuple[bytes, int]:
        """A command line as WinRM runs it: stdout and exit code."""
        match = re.fullmatch(r"powershell -NoProfile -NonInteractive -encodedcommand ([A-Za-z0-9+/=]+)", command)
        if not match:
            with self.lock:
                self.received.append(command)
            return self._failure(Refused(f"The term '{command[:40]}' is not recognized", category="ObjectNotFound"))
        script = base64.b64decode(match.group(1)).decode("utf-16-le")
        with self.lock:
            self.received.append(script)
            name, arguments = identify(script)
            if name is None:
                return self._failure(Refused("not a script of the hyperv provider", category="ParserError"))
            try:
                if name in self.denied:
                    raise Refused("You do not have the required permission to complete this task. Contact the administrator "
                                  "of the authorization policy for the computer 'HV01'.", category="PermissionDenied")  # fmt: skip
                answer = getattr(self, "_" + name)(arguments)
            except Refused as error:
                return self._failure(error)
        return json.dumps(answer).encode("utf-8"), 0

    @staticmethod
    def _failure(error: Refused) -> tuple[bytes, int]:
        failure = {"id": error.id, "category": error.category, "message": str(error), "hresult": error.hresult}
        return json.dumps({"hyperexport_error": failure}).encode("utf-8"), 1

    # The scripts, as Hyper-V answers them.

    def _whoami(self, a: dict) -> dict:
        return dict(self.identity)

    def _find_vm(self, a: dict) -> dict:
        if a.get("id"):
            found = [vm for vm in self.vms if vm.id.lower() == str(a["id"]).lower()]
        else:
            found = [vm for vm in self.vms if vm.name.lower() == str(a.get("name")).lower()]
        return {"matches": [{"id": vm.id, "name": vm.name, "state": vm.state} for vm in found],
                "names": [vm.name for vm in self.vms][:20]}  # fmt: skip

    def _vhd(self, host_path: str) -> dict:
        path = self.local(host_path)
        if not path.is_file():
            raise Refused(f"The system cannot find the file '{host_path}'.", category="ObjectNotFound")
        disk = next((d for vm in self.vms for d in vm.disks if d.path == host_path), None)
        parent = disk.parent if disk else None
        for vm in self.vms:
            for checkpoint in vm.checkpoints:
                for slot, (frozen, size) in checkpoint["frozen"].items():
                    if frozen == host_path:
                        return {"vhd_format": "VHDX", "vhd_type": "Dynamic", "parent_path": None, "size": size,
                                "file_size": path.stat().st_size}  # fmt: skip
        return {"vhd_format": "VHDX", "vhd_type": "Differencing" if parent else "Dynamic", "parent_path": parent,
                "size": disk.virtual_size if disk else 0, "file_size": path.stat().st_size}  # fmt: skip

    def _describe_vm(self, a: dict) -> dict:
        vm = self._vm(a["id"])
        drives = []
        for d in vm.disks:
            drive = {"controller_type": d.controller_type, "controller": d.controller, "location": d.location,
                     "path": d.path, "disk_number": d.disk_number}  # fmt: skip
            drive.update(self._vhd(d.path) if d.path else {"vhd_format": None, "vhd_type": None, "parent_path": None,
                                                            "size": None, "file_size": None})  # fmt: skip
            drives.append(drive)
        boot = []
        if vm.generation == 2 and vm.boot:
            boot = [{"controller_type": vm.boot[0], "controller": vm.boot[1], "location": vm.boot[2]}]
        return {
            "id": vm.id, "name": vm.name, "state": vm.state, "generation": vm.generation, "processors": vm.processors,
            "memory_bytes": vm.memory_bytes, "secure_boot": vm.secure_boot if vm.generation == 2 else None,
            "drives": drives if len(drives) != 1 else drives[0],  # ConvertTo-Json writes a one-element array as its element
            "boot_order": boot, "nics": [{"name": n, "mac": m, "switch": s} for n, m, s in vm.nics],
            "checkpoints": [c["name"] for c in vm.checkpoints],
        }

    def _checkpoint(self, a: dict) -> dict:
        vm = self._vm(a["id"])
        previous = vm.checkpoint_type
        vm.checkpoint_type = "ProductionOnly"
        try:
            if any(d.path is None for d in vm.disks):
                raise Refused(f"'{vm.name}' could not initiate a checkpoint operation: the virtual machine has a pass-through disk.")
            if vm.checkpoint_refusal:
                raise Refused(vm.checkpoint_refusal)
            frozen = {}
            for d in vm.disks:
                assert d.path is not None
                frozen[(d.controller_type, d.controller, d.location)] = (d.path, d.virtual_size)
                stem = d.path.rsplit(".", 1)[0]
                d.path = f"{stem}_{uuid.uuid4().hex[:8].upper()}.avhdx"  # the VM writes here from now on
                d.parent = frozen[(d.controller_type, d.controller, d.location)][0]
                self.local(d.path).write_bytes(b"vhdxfile")  # the differencing file Hyper-V creates
            checkpoint = {"id": str(uuid.uuid4()), "name": a["name"], "frozen": frozen}
            vm.checkpoints.append(checkpoint)
        finally:
            vm.checkpoint_type = previous
        return {"id": checkpoint["id"], "name": checkpoint["name"], "drives": [
            {"controller_type": slot[0], "controller": slot[1], "location": slot[2], "path": path,
             "file_size": self.local(path).stat().st_size} for slot, (path, _size) in frozen.items()
        ]}  # fmt: skip

    def _find_checkpoints(self, a: dict) -> dict:
        return {"checkpoints": [{"vm": vm.id, "name": c["name"], "id": c["id"]}
                                for vm in self.vms for c in vm.checkpoints if c["name"] == a["name"]]}  # fmt: skip

    def _remove_checkpoint(self, a: dict) -> dict:
        removed = []
        for vm in self.vms:
            if vm.id.lower() != str(a["vm"]).lower():
                continue
            for checkpoint in [c for c in vm.checkpoints if c["name"] == a["name"]]:
                for d in vm.disks:  # the merge: the VM writes to the parent again
                    slot = (d.controller_type, d.controller, d.location)
                    if slot in checkpoint["frozen"] and d.path:
                        self.local(d.path).unlink(missing_ok=True)
                        d.path, d.parent = checkpoint["frozen"][slot][0], None
                vm.checkpoints.remove(checkpoint)
                removed.append(checkpoint["id"])
        return {"removed": removed}

    def _share_path(self, a: dict) -> dict:
        if a["name"] not in self.shares:
            raise Refused(f"no SMB share named '{a['name']}' on this host", category="ObjectNotFound")
        return {"name": a["name"], "path": self.shares[a["name"]]}

    def _export_vm(self, a: dict) -> dict:
        vm = self._vm(a["id"])
        target = self.local(a["path"])
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():  # New-Item -ItemType Directory
            raise Refused(f"An item with the specified name {a['path']} already exists.", category="ResourceExists")
        target.mkdir()
        folder = re.sub(r'[\\/:*?"<>|]', "_", vm.name)
        disks_dir = target / folder / "Virtual Hard Disks"
        disks_dir.mkdir(parents=True, exist_ok=True)
        (target / folder / "Virtual Machines").mkdir(exist_ok=True)
        (target / folder / "Virtual Machines" / f"{vm.id.upper()}.vmcx").write_bytes(b"vmcx")
        budget = self.export_space
        files = []
        for d in vm.disks:
            assert d.path is not None
            source = self.local(d.path)
            dest = disks_dir / d.path.rsplit("\\", 1)[-1]
            size = source.stat().st_size
            if budget is not None and size > budget:
                with open(source, "rb") as src, open(dest, "wb") as out:
                    out.write(src.read(budget))  # what was written before the volume was full
                raise Refused("Failed to copy file during export: There is not enough space on the disk. (0x80070070)",
                              category="NotSpecified", hresult=OUT_OF_SPACE)  # fmt: skip
            shutil.copyfile(source, dest)
            budget = None if budget is None else budget - size
            files.append({"path": f"{a['path']}\\{folder}\\Virtual Hard Disks\\{dest.name}", "size": size})
        return {"files": files}


def identify(script: str) -> tuple[str | None, dict]:
    """The name of the provider's script ``script`` is (its fixed text exactly) and its decoded arguments."""
    blobs = _BLOB.findall(script)
    if len(blobs) != 1:
        return None, {}
    template = script.replace(f"FromBase64String('{blobs[0]}')", f"FromBase64String('{ARGUMENTS_MARK}')")
    for name, body in SCRIPTS.items():
        if template == PRELUDE.replace(BODY_MARK, body):
            return name, json.loads(base64.b64decode(blobs[0]).decode("utf-8"))
    return None, {}
