"""The Azure SDK clients of one subscription, made from an ``AzureLogin``.

Every client retries throttling (429, honouring Retry-After) and 5xx itself (azure-core's RetryPolicy), so
callers see only what is left after ``retry_total`` attempts. Each honours HTTPS_PROXY/NO_PROXY (azure-core's
requests transport reads the environment) and trusts the login's ``ca_bundle``.

Resource Manager's answers name further URLs (an operation's Azure-AsyncOperation or Location, a list's
nextLink) that azure-core follows through the same pipeline, whose bearer-token policy signs any https URL:
``SameEndpointPolicy`` (a per-retry policy, so it runs before the token is added) refuses every request to a
host or port other than the Resource Manager endpoint's, so an answer cannot send the token elsewhere.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ...errors import InvalidInputError
from .credentials import AzureLogin, sdk_import

_RETRY = {"retry_total": 6, "retry_backoff_factor": 0.8, "retry_backoff_max": 60}


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)


def same_endpoint_policy(endpoint: str) -> Any:
    """An azure-core policy that refuses any request whose scheme, host or port is not ``endpoint``'s."""
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    expected = urlsplit(endpoint).scheme, *_host_port(endpoint)

    class SameEndpointPolicy(SansIOHTTPPolicy):
        def on_request(self, request: Any) -> None:
            url = request.http_request.url
            if (urlsplit(url).scheme, *_host_port(url)) != expected:
                where = "{}:{}".format(*_host_port(url))
                raise InvalidInputError(
                    f"Azure Resource Manager ({endpoint}) pointed a request at another host, {where}; it was not sent "
                    "(the service principal's token goes to the Resource Manager endpoint only). Check "
                    "resource_manager_endpoint and any proxy or gateway in front of it."
                )

    return SameEndpointPolicy()


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
                    credential_scopes=[self.login.scope], per_retry_policies=[same_endpoint_policy(self.login.arm_endpoint)],
                    **_RETRY, **self.login.connection_kwargs(),
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
