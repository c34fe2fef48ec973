"""The SDK clients of one export: Compute Engine (REST transport) and Cloud Storage, at the login's endpoints.

Every Compute Engine client, the operations clients included, is made here with the same credentials and
``client_options``: an operation is polled where it was started (the SDK's own ExtendedOperation would poll
through a default-endpoint client).
"""

from __future__ import annotations

import importlib
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from ...errors import InvalidInputError
from ..session import RUN_TAG, SOURCE_TAG
from .credentials import GcpLogin, sdk_missing

#: Label keys of everything a run creates (Compute Engine label keys allow no colon).
RUN_LABEL = RUN_TAG.replace(":", "-")
SOURCE_LABEL = SOURCE_TAG.replace(":", "-")
_LABEL_VALUE = re.compile(r"[^a-z0-9_-]+")


def compute_module() -> Any:
    try:
        from google.cloud import compute_v1
    except ImportError:
        raise sdk_missing("google-cloud-compute") from None
    return compute_v1


def storage_module() -> Any:
    try:
        return importlib.import_module("google.cloud.storage")
    except ImportError:
        raise sdk_missing("google-cloud-storage") from None


def label_value(value: str) -> str:
    """``value`` as a Compute Engine label value (lowercase letters, digits, _ and -, at most 63)."""
    return _LABEL_VALUE.sub("-", value.lower())[:63]


def run_labels(run_id: str, source: str = "") -> dict[str, str]:
    labels = {RUN_LABEL: label_value(run_id)}
    if source:
        labels[SOURCE_LABEL] = label_value(source)
    return labels


def run_filter(run_id: str) -> str:
    return f'labels.{RUN_LABEL} = "{label_value(run_id)}"'


@dataclass
class GcpContext:
    """A project and zone, and the clients that reach them (made once, shared by threads)."""

    login: GcpLogin
    project: str
    zone: str
    credentials: Any
    _clients: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def region(self) -> str:
        return self.zone.rsplit("-", 1)[0]

    def compute(self, name: str) -> Any:
        """``compute_v1.<name>Client`` (InstancesClient, ZoneOperationsClient...) over REST at the endpoint."""
        with self._lock:
            if name not in self._clients:
                compute_v1 = compute_module()
                options = {"api_endpoint": self.login.compute_endpoint} if self.login.compute_endpoint else None
                self._clients[name] = getattr(compute_v1, f"{name}Client")(
                    credentials=self.credentials, transport="rest", client_options=options
                )
            return self._clients[name]

    def storage(self) -> Any:
        with self._lock:
            if "storage" not in self._clients:
                storage = storage_module()
                options = {"api_endpoint": self.login.storage_endpoint} if self.login.storage_endpoint else None
                self._clients["storage"] = storage.Client(project=self.project, credentials=self.credentials, client_options=options)
            return self._clients["storage"]

    @property
    def storage_root(self) -> str:
        return (self.login.storage_endpoint or "https://storage.googleapis.com").rstrip("/")


def make_context(project: str | None, zone: str, login: GcpLogin | None) -> GcpContext:
    login = login if isinstance(login, GcpLogin) else GcpLogin()
    compute_module()  # a missing SDK is named before anything else
    storage_module()
    credentials, default_project = login.resolved()
    chosen = project or default_project
    if not chosen:
        raise InvalidInputError(
            "no GCP project: give project=..., or a credentials block with a project (or a key with project_id)",
            field="source.project",
        )
    return GcpContext(login=login, project=chosen, zone=zone, credentials=credentials)
