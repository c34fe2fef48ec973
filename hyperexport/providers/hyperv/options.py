"""What identifies a VM on a Hyper-V host, and how its disks are exported and read."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class HypervOptions(BaseModel):
    """A VM on the Hyper-V host of the credentials block, by name or id."""

    model_config = ConfigDict(extra="forbid")

    vm: str | None = Field(default=None, title="VM name", min_length=1, max_length=256,
                           description="VM name, matched literally (no wildcards); several VMs of that name are listed.")
    vm_id: str | None = Field(default=None, title="VM id", description="VM id (a GUID, Get-VM's Id): picks one of several VMs of a name.")
    export_method: Literal["checkpoint", "export"] = Field(
        default="checkpoint",
        description="checkpoint: a production checkpoint, its frozen VHDX files read in place, then removed; "
        "export: Export-VM to the share's hyperexport\\RUN_ID directory, read, then removed.",
    )
    share: str | None = Field(
        default=None, title="SMB share",
        description="UNC path of the share to read from, e.g. \\\\hv01\\exports: where export writes (needed for "
        "export); checkpoint reads disks under it through it and others through the admin share of their drive.",
    )
    share_local_path: str | None = Field(
        default=None, title="Share's local path",
        description="The host directory the share exposes, e.g. E:\\exports; default: asked from the host (Get-SmbShare).",
    )
