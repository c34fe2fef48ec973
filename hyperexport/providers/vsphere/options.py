"""What identifies a VM in vSphere, and how it is exported."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class VsphereOptions(BaseModel):
    """A VM of a vCenter Server or ESXi host, and how to export it."""

    model_config = ConfigDict(extra="forbid")

    vm: str | None = Field(
        default=None, min_length=1, max_length=2048, title="VM",
        description="VM name, inventory path (/DC/vm/folder/name), managed object id (vm-123) or instance UUID.",
    )  # fmt: skip
    datacenter: str | None = Field(
        default=None, min_length=1, max_length=255, description="Datacenter to look in; default: all of them."
    )
    export_method: Literal["datastore", "nfc"] = Field(
        default="datastore",
        description="datastore: snapshot the VM (running or not) and read its disks from the datastore with ranged, "
        "parallel, resumable reads; only CBT's allocated areas when CBT is on. nfc: ExportVm's lease (powered-off "
        "VMs), streamOptimized VMDKs and the OVF descriptor.",
    )
    quiesce: bool = Field(default=False, description="Quiesce the guest file systems (VMware Tools) for the snapshot.")
    poll_seconds: float = Field(default=2.0, gt=0, le=600, description="Seconds between status checks of vSphere tasks.")
