"""The contract every provider keeps: one ``Provider`` subclass per package, one instance in the registry.

A provider says what identifies a VM at its source (``options_type``), what credentials it is handed
(``credentials_type``), how it is given on the command line (``flags``), how its runs are named, what its
``--cleanup-run`` needs, how many of its tasks may run at once and how its disks are best downloaded. Then it
does four things, in its own SDK's words only:

    check(options, export)            refuse bad options before any work starts
    export(session, options, export)  find or create the VM's disks; record what it creates in the session
    open_disk(disk, options, creds)   one disk as a ByteRangeSource for the download engine (or a local path)
    remove(run_id, resources, ...)    delete what an export created (roll-back, clean-up, --cleanup-run)

The core (``providers/lifecycle.py``) owns the run id, the ledger of created resources, roll-back on a failed
export and clean-up; the pipeline never knows where disks came from.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from ..errors import InvalidInputError
from ..models import DiskSource, ExportOptions, ExportResult, Resource
from ..staging import open_builtin
from ..transfer import ByteRangeSource
from ..transfer.defaults import TransferDefaults
from ..validate_input import build
from .session import ExportSession

OptionsT = TypeVar("OptionsT", bound=BaseModel)
CredentialsT = TypeVar("CredentialsT")

_NAME = re.compile(r"^[a-z][a-z0-9]*$")


class CliFlag(BaseModel):
    """A command-line flag that sets one provider option: ``--instance`` sets ``instance``."""

    model_config = ConfigDict(frozen=True)

    flag: str = Field(pattern=r"^--[a-z][a-z0-9-]*$")
    option: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    help: str


class Provider(ABC, Generic[OptionsT, CredentialsT]):
    """One source of VMs. Subclasses set the attributes below and implement ``check``, ``describe`` and
    ``export``; ``open_disk`` when their disks are not plain paths or URLs, ``remove``/``run_resources`` when their
    exports create anything."""

    name: str  # also the Prefect tag of its tasks and the value of MigrationRequest.provider
    title: str  # for people: "AWS EC2"
    options_type: type[OptionsT]
    credentials_type: type[CredentialsT] | None = None  # None: takes no credentials
    extra: str | None = None  # the pip extra with its SDK: pip install 'hyperexport[<extra>]'
    flags: tuple[CliFlag, ...] = ()
    label_options: tuple[str, ...] = ()  # options that name the VM in run names, the first one set wins
    cleanup_options: tuple[str, ...] = ()  # options a --cleanup-run of this provider needs
    recommended_limit: int  # how many of its tasks may run at once (the seeds' advice)
    transfer: TransferDefaults

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if name is not None and not _NAME.match(name):
            raise TypeError(f"provider name {name!r} must be lowercase letters and digits")

    # The options.

    def parse(self, raw: Mapping[str, Any] | BaseModel) -> OptionsT:
        """The request's ``source`` as this provider's options (InvalidInputError naming the field)."""
        if isinstance(raw, self.options_type):
            return raw
        data = raw.model_dump() if isinstance(raw, BaseModel) else dict(raw)
        return build(self.options_type, data, within="source")

    @abstractmethod
    def check(self, options: OptionsT, export: ExportOptions) -> None:
        """Refuse options that cannot work, before any work starts (InvalidInputError with ``field``)."""

    @abstractmethod
    def describe(self, options: OptionsT) -> str:
        """One line for logs and reports; never a secret (a URL's password or query, a key)."""

    def label(self, options: OptionsT) -> str:
        """A short name of the VM for run names: a file name, an instance id. Never a secret."""
        for option in self.label_options:
            value = getattr(options, option, None)
            if value:
                return short_name(str(value))
        return "vm"

    def source_paths(self, options: OptionsT) -> list[Path]:
        """Local files the run reads in place (the output may not overlap them); none for a cloud."""
        return []

    # The work.

    @abstractmethod
    def export(self, session: ExportSession[CredentialsT], options: OptionsT, export: ExportOptions) -> ExportResult:
        """Find or create the VM's disks. Everything created at the source is recorded with ``session.record``
        the moment it exists (tagged with ``session.tags()`` where the source has tags): the core rolls it back
        if the export fails, and cleans it up after the download."""

    def open_disk(self, disk: DiskSource, options: OptionsT, credentials: CredentialsT | None) -> ByteRangeSource | Path:
        """One exported disk for staging: a byte source for the download engine (a VMDK descriptor's extents
        are then read through its ``sibling``), or a local path, read in place and never written.

        The built-in sources serve absolute local paths and plain http(s) URLs; a provider whose disks are
        elsewhere, or need credentials, overrides this."""
        return open_builtin(disk)

    def remove(
        self, run_id: str, resources: Sequence[Resource], options: OptionsT, credentials: CredentialsT | None
    ) -> list[Resource]:
        """Delete exactly ``resources`` (created by run ``run_id``); returns those removed. Ones already gone
        count as removed; ones that cannot be removed are named in one TransferError."""
        if resources:
            raise NotImplementedError(f"the {self.name} provider records resources but cannot remove them")
        return []

    def run_resources(self, run_id: str, options: OptionsT, credentials: CredentialsT | None) -> list[Resource]:
        """What run ``run_id`` left at the source, found by its tags alone (for ``--cleanup-run``)."""
        return []

    def __repr__(self) -> str:
        return f"<provider {self.name}>"


KindT = TypeVar("KindT", bound=str)


def exactly_one(provider: str, named: Sequence[tuple[KindT, str | None]], *, field: str, shown: str | None = None) -> tuple[KindT, str]:
    """The one way of naming the VM that was given, of several (``instance``, ``ami`` or ``snapshot``), as
    (kind, value); none or several refused with ``field``. ``shown``: how the message lists the choices."""
    given = [(kind, value) for kind, value in named if value]
    if len(given) != 1:
        choices = shown or ", ".join(kind for kind, _ in named[:-1]) + f" or {named[-1][0]}"
        raise InvalidInputError(
            f"give exactly one of {choices} for the {provider} provider "
            f"(got {', '.join(kind for kind, _ in given) or 'none'})",
            field=field,
        )
    kind, value = given[0]
    assert value is not None
    return kind, value


def short_name(value: str) -> str:
    """A path's or URL's last component: never a URL's user, password or query."""
    if "://" in value:
        parts = urlsplit(value)
        return PurePosixPath(parts.path.rstrip("/")).name or parts.hostname or "vm"
    return PurePosixPath(value.rstrip("/")).name or "vm"
