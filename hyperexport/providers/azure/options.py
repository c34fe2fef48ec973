"""What identifies an Azure VM or disk to export, and how to export it."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ...errors import InvalidInputError
from ..contract import exactly_one

# ARM's own rules: resource groups 1-90 of letters, digits, _-.() not ending in '.'; VMs 1-64 of letters,
# digits, _-. (Linux) and no other characters anywhere.
_RESOURCE_GROUP = re.compile(r"^[-\w.()]{0,89}[-\w()]$")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$")
_ID = re.compile(
    r"^/subscriptions/(?P<sub>[A-Za-z0-9-]+)/resourceGroups/(?P<rg>[-\w.()]{1,90})"
    r"/providers/Microsoft\.Compute/(?P<kind>disks|snapshots)/(?P<name>[A-Za-z0-9_][A-Za-z0-9_.-]{0,79})$",
    re.IGNORECASE,
)

SourceKind = Literal["vm", "disk", "snapshot"]


class ResourceId(BaseModel):
    """A parsed managed disk or snapshot id."""

    subscription: str
    resource_group: str
    kind: Literal["disks", "snapshots"]
    name: str


def parse_resource_id(value: str, kind: Literal["disks", "snapshots"], field: str) -> ResourceId:
    match = _ID.match(value)
    if not match or match["kind"].lower() != kind:
        example = f"/subscriptions/SUB/resourceGroups/RG/providers/Microsoft.Compute/{kind}/NAME"
        raise InvalidInputError(f"{value!r} is not a managed {kind[:-1]} id (like {example})", field=field)
    return ResourceId(subscription=match["sub"], resource_group=match["rg"], kind=kind, name=match["name"])


class AzureOptions(BaseModel):
    """An Azure VM (name and resource group), a managed disk or a snapshot, and how to export it."""

    model_config = ConfigDict(extra="forbid")

    vm: str | None = Field(default=None, title="VM", description="Name of the virtual machine to migrate.")
    resource_group: str | None = Field(default=None, description="Resource group of the VM.")
    disk_id: str | None = Field(default=None, title="Disk id", description="Managed disk id to migrate (/subscriptions/…/disks/NAME).")
    snapshot_id: str | None = Field(
        default=None, title="Snapshot id", description="Snapshot id to migrate as it is (/subscriptions/…/snapshots/NAME)."
    )
    incremental: bool = Field(
        default=False, description="Take incremental snapshots (needed for Ultra and Premium SSD v2 disks)."
    )
    grant_seconds: int = Field(
        default=4 * 3600, ge=300, le=5 * 86400, description="Lifetime of each read SAS grant; one that expires is renewed."
    )
    poll_seconds: float = Field(default=5.0, gt=0, le=600, description="Seconds between status checks of snapshots.")
    vm_name: str | None = Field(default=None, title="VM name", description="Name to record for the VM; default: its Azure name.")


def source(options: AzureOptions) -> tuple[SourceKind, str]:
    """The one source given (its kind and reference); refuse none or several."""
    named: tuple[tuple[SourceKind, str | None], ...] = (
        ("vm", options.vm), ("disk", options.disk_id), ("snapshot", options.snapshot_id)
    )
    return exactly_one("azure", named, field="source.vm", shown="vm (with resource_group), disk_id or snapshot_id")


def check(options: AzureOptions) -> None:
    kind, ref = source(options)
    if kind == "vm":
        if not _NAME.match(ref):
            raise InvalidInputError(f"{ref!r} is not an Azure VM name (letters, digits, _ . -)", field="source.vm")
        if not options.resource_group:
            raise InvalidInputError("a VM is named within its resource group: give resource_group", field="source.resource_group")
        if not _RESOURCE_GROUP.match(options.resource_group):
            raise InvalidInputError(
                f"{options.resource_group!r} is not an Azure resource group name", field="source.resource_group"
            )
    elif options.resource_group:
        raise InvalidInputError(
            "resource_group goes with vm only (a disk or snapshot id names its own)", field="source.resource_group"
        )
    elif kind == "disk":
        parse_resource_id(ref, "disks", "source.disk_id")
    else:
        parse_resource_id(ref, "snapshots", "source.snapshot_id")
