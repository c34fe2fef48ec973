"""An export in progress: its run id, its credentials and the ledger of what it created at the source."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ..models import Resource

CredentialsT = TypeVar("CredentialsT")

#: Tag keys put on everything an export creates where the source has tags; RUN_TAG's value is the run id.
RUN_TAG = "hyperexport:run-id"
SOURCE_TAG = "hyperexport:source"


def new_run_id() -> str:
    return uuid.uuid4().hex


@dataclass
class ExportSession(Generic[CredentialsT]):
    """Handed to ``Provider.export``: record each resource the moment it exists, so that a failure at any
    later point rolls it back."""

    run_id: str
    credentials: CredentialsT | None = None
    source: str = ""  # what is exported (an instance id), for the source tag
    ledger: list[Resource] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, kind: str, id: str, location: str | None = None) -> Resource:
        resource = Resource(kind=kind, id=id, location=location)
        with self._lock:  # exports may create resources from several threads
            if resource not in self.ledger:
                self.ledger.append(resource)
        return resource

    def forget(self, resource: Resource) -> None:
        """``resource`` is gone already (the export itself removed it, a temporary disk or a worker): off the
        ledger, so that roll-back and clean-up do not look for it."""
        with self._lock:
            if resource in self.ledger:
                self.ledger.remove(resource)

    def tags(self) -> dict[str, str]:
        """The tags that mark a resource as this run's: clean-up removes only what carries them."""
        tags = {RUN_TAG: self.run_id}
        if self.source:
            tags[SOURCE_TAG] = self.source
        return tags
