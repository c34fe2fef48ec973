"""The Azure SDK clients of one subscription, made from an ``AzureLogin``.

Every client retries throttling (429, honouring Retry-After) and 5xx itself (azure-core's RetryPolicy), so
callers see only what is left after ``retry_total`` attempts. Each honours HTTPS_PROXY/NO_PROXY (azure-core's
requests transport reads the environment) and trusts the login's ``ca_bundle``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from ...errors import InvalidInputError
from .credentials import AzureLogin, sdk_import

_RETRY = {"retry_total": 6, "retry_backoff_factor": 0.8, "retry_backoff_max": 60}


@dataclass
class AzureContext:
    login: AzureLogin
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def subscription(self) -> str:
        return self.login.subscription_id

    def _client(self, module: str, cls: str) -> Any:
        with self._lock:
            if cls not in self._cache:
                sdk = sdk_import(module)
                self._cache[cls] = getattr(sdk, cls)(
                    self.login.credential(), self.login.subscription_id, base_url=self.login.arm_endpoint,
                    credential_scopes=[self.login.scope], **_RETRY, **self.login.connection_kwargs(),
                )
            return self._cache[cls]

    @property
    def compute(self) -> Any:
        return self._client("azure.mgmt.compute", "ComputeManagementClient")

    @property
    def network(self) -> Any:
        return self._client("azure.mgmt.network", "NetworkManagementClient")


def make_context(credentials: Any) -> AzureContext:
    if not isinstance(credentials, AzureLogin):
        raise InvalidInputError(
            "the azure provider needs an AzureLogin (from a hyperexport Azure service principal block: give "
            f"credentials_block), not {type(credentials).__name__}",
            field="credentials_block",
        )
    return AzureContext(credentials)
