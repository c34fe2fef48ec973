"""What identifies a VM (or one disk, or one snapshot) at Compute Engine, and how it is exported."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ...errors import InvalidInputError
from ..contract import exactly_one
from ...models import DiskFormat, ExportOptions

#: Compute Engine resource names (RFC 1035 labels of up to 63 characters).
NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
ZONE = re.compile(r"^[a-z]+-[a-z]+[0-9]{1,2}-[a-z]$")
PROJECT = re.compile(r"^([a-z][a-z0-9.-]{0,60}[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$")
PREFIX = re.compile(r"^((?!\.{1,2}/)[A-Za-z0-9_.-]{1,200}/){0,8}$")  # folders, never . or ..
IMAGE = re.compile(r"^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/global/images/(family/)?[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
NETWORK = re.compile(r"^(projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/)?(global|regions/[a-z]+-[a-z]+[0-9]{1,2})/(networks|subnetworks)/[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
MACHINE_TYPE = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
#: Google's public image projects the worker may boot from (it reads the disks and holds a storage token);
#: any other image must be the run's own project's.
PUBLIC_IMAGE_PROJECTS = ("debian-cloud", "ubuntu-os-cloud", "cos-cloud", "rocky-linux-cloud", "centos-cloud",
                         "rhel-cloud", "suse-cloud", "fedora-coreos-cloud")  # fmt: skip


class GcpOptions(BaseModel):
    """A Compute Engine instance, persistent disk or snapshot, and the export worker that reads it."""

    model_config = ConfigDict(extra="forbid")

    instance: str | None = Field(default=None, description="Instance name: every persistent disk of it is exported.")
    disk: str | None = Field(default=None, description="One persistent disk's name (in the zone) to export instead.")
    snapshot: str | None = Field(default=None, description="One existing snapshot's name to export instead.")
    zone: str = Field(description="Zone of the instance or disk (and of the export worker), e.g. europe-west1-b.")
    project: str | None = Field(default=None, description="Project id; default: the credentials block's project.")
    bucket: str | None = Field(default=None, description="Cloud Storage bucket the worker writes the disks to (required).")
    prefix: str = Field(default="hyperexport/", description="Object name prefix in the bucket; the run id is added.")
    disk_format: Literal["qcow2", "raw"] | None = Field(
        default=None, description="Format of the exported objects; default: qcow2 (sparse, compressed) unless the run asks raw."
    )
    guest_flush: bool = Field(
        default=False, description="Ask the guest to flush (Windows VSS, Linux fsfreeze) before each snapshot, where it supports it."
    )
    machine_type: str = Field(default="e2-small", description="Machine type of the export worker.")
    worker_image: str = Field(
        default="projects/debian-cloud/global/images/family/debian-12",
        description="Public image of the export worker (its image or family path).",
    )
    network: str = Field(default="global/networks/default", description="Network of the export worker.")
    subnetwork: str | None = Field(default=None, description="Subnetwork of the export worker (regions/R/subnetworks/S).")
    external_ip: bool = Field(
        default=False,
        title="External IP",
        description="Give the worker an external IP; without one its subnet needs Private Google Access to reach Cloud Storage.",
    )
    poll_seconds: float = Field(default=10.0, gt=0, le=600, description="Seconds between status checks of operations and the worker.")
    vm_name: str | None = Field(default=None, title="VM name", description="Name to record for the VM; default: the instance's name.")


SourceKind = Literal["instance", "disk", "snapshot"]


def source_of(options: GcpOptions) -> tuple[SourceKind, str]:
    """The one source given (its kind and name); refuse none or several."""
    named: tuple[tuple[SourceKind, str | None], ...] = (
        ("instance", options.instance), ("disk", options.disk), ("snapshot", options.snapshot)
    )
    return exactly_one("gcp", named, field="source.instance")


def export_format(options: GcpOptions, export: ExportOptions) -> Literal["qcow2", "raw"]:
    if options.disk_format:
        return options.disk_format
    return "raw" if export.format == DiskFormat.raw else "qcow2"


def check(options: GcpOptions, export: ExportOptions) -> None:
    kind, name = source_of(options)
    if not NAME.match(name):
        raise InvalidInputError(f"{name!r} is not a Compute Engine {kind} name (lowercase letters, digits, dashes)", field=f"source.{kind}")
    patterns = (
        ("zone", ZONE, "a zone like europe-west1-b"), ("project", PROJECT, "a project id like my-project-123"),
        ("bucket", BUCKET, "a bucket name"), ("prefix", PREFIX, "folders ending in / (or empty)"),
        ("machine_type", MACHINE_TYPE, "a machine type like e2-small"),
        ("worker_image", IMAGE, "projects/P/global/images/family/F or .../images/NAME"),
        ("network", NETWORK, "global/networks/NAME"), ("subnetwork", NETWORK, "regions/R/subnetworks/NAME"),
    )  # fmt: skip
    for option, pattern, shape in patterns:
        value = getattr(options, option)
        if value is not None and not pattern.match(value):
            raise InvalidInputError(f"{value!r} is not {shape}", field=f"source.{option}")
    check_worker_image(options.worker_image, options.project)
    if not options.bucket:
        raise InvalidInputError(
            "the gcp provider needs a Cloud Storage bucket for the export (bucket=...), in or near the zone's region",
            field="source.bucket",
        )
    if options.guest_flush and kind == "snapshot":
        raise InvalidInputError("guest_flush applies to an instance or disk, not an existing snapshot", field="source.guest_flush")
    if export.format is not None and export.format not in (DiskFormat.qcow2, DiskFormat.raw) and options.disk_format is None:
        raise InvalidInputError(
            f"the gcp export worker writes qcow2 or raw, not {export.format.value}; set disk_format", field="source.disk_format"
        )


def check_worker_image(image: str, project: str | None) -> None:
    """The worker's image comes from a public image project or the run's own ``project`` (None: checked again
    once the credentials' project is known)."""
    owner = image.split("/")[1]
    if owner in PUBLIC_IMAGE_PROJECTS or project is None or owner == project.rsplit(":", 1)[-1]:
        return
    raise InvalidInputError(
        f"the worker image {image} belongs to project {owner}, which is neither a public image project "
        f"({', '.join(PUBLIC_IMAGE_PROJECTS)}) nor the run's project {project}: the worker reads the disks and "
        "holds a Cloud Storage token. Use a public image (the default debian-cloud family debian-12) or copy "
        "the image into your project.",
        field="source.worker_image",
    )
