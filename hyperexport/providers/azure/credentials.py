"""What the azure provider is handed as credentials: a service principal, its subscription and its cloud.

``AzureLogin`` holds the tenant, the client id and secret and the subscription, and says which cloud it lives
in: a named one (``public``, ``china``, ``usgov``) or an explicit Resource Manager endpoint and authority (a
private deployment, or the tests' local server), where azure-identity's instance discovery is turned off (it
would ask login.microsoftonline.com about an authority it cannot know). ``ca_bundle`` names a PEM file of CAs
to trust for Azure AD and Resource Manager, for endpoints behind a TLS-inspecting proxy or a private CA. The
hyperexport Azure service-principal block builds one.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, model_validator

from ...errors import InvalidInputError

CloudName = Literal["public", "china", "usgov"]

#: (Resource Manager endpoint, authority, token audience) of each named cloud.
CLOUDS: dict[str, tuple[str, str, str]] = {
    "public": ("https://management.azure.com", "https://login.microsoftonline.com", "https://management.core.windows.net/"),
    "china": ("https://management.chinacloudapi.cn", "https://login.chinacloudapi.cn", "https://management.core.chinacloudapi.cn/"),
    "usgov": ("https://management.usgovcloudapi.net", "https://login.microsoftonline.us", "https://management.core.usgovcloudapi.net/"),
}
KNOWN_AUTHORITIES = frozenset(authority.removeprefix("https://") for _, authority, _ in CLOUDS.values())


def sdk_import(module: str) -> Any:
    """An Azure SDK module (``azure.identity``), or the pip command that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.replace(".", "-")
        raise InvalidInputError(
            f"the azure provider needs {package}; install it with: pip install 'hyperexport[azure]'"
        ) from None


def _https(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    value = value.rstrip("/")
    if not value.startswith("https://") or len(value) <= len("https://"):
        raise ValueError(f"{what} must be an https:// URL (azure-core sends bearer tokens over https only), got {value!r}")
    return value


class AzureLogin(BaseModel):
    """A service principal (client secret) and the subscription and cloud it works in."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9.-]+$")
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    subscription_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9-]+$")
    cloud: CloudName = "public"
    resource_manager_endpoint: str | None = Field(default=None, description="Explicit ARM endpoint; default: the cloud's.")
    authority_host: str | None = Field(default=None, description="Explicit Azure AD authority; default: the cloud's.")
    ca_bundle: str | None = Field(default=None, description="PEM file of CAs to trust for Azure AD and ARM.")
    _credential: Any = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _endpoints(self) -> AzureLogin:
        _https(self.resource_manager_endpoint, "resource_manager_endpoint")
        _https(self.authority_host, "authority_host")
        return self

    @property
    def arm_endpoint(self) -> str:
        return _https(self.resource_manager_endpoint, "resource_manager_endpoint") or CLOUDS[self.cloud][0]

    @property
    def authority(self) -> str:
        return _https(self.authority_host, "authority_host") or CLOUDS[self.cloud][1]

    @property
    def scope(self) -> str:
        """The token audience: the named cloud's, or the explicit endpoint's own."""
        if self.resource_manager_endpoint:
            return self.arm_endpoint + "/.default"
        return CLOUDS[self.cloud][2] + ".default"

    def connection_kwargs(self) -> dict[str, Any]:
        """What every azure-core pipeline (identity and Resource Manager) takes to trust ``ca_bundle``."""
        return {"connection_verify": self.ca_bundle} if self.ca_bundle else {}

    def credential(self) -> Any:
        """azure-identity's ClientSecretCredential (made once; it caches and refreshes its token)."""
        if self._credential is None:
            identity = sdk_import("azure.identity")
            known = self.authority.removeprefix("https://") in KNOWN_AUTHORITIES
            self._credential = identity.ClientSecretCredential(
                tenant_id=self.tenant_id, client_id=self.client_id, client_secret=self.client_secret.get_secret_value(),
                authority=self.authority, disable_instance_discovery=not known, **self.connection_kwargs(),
            )
        return self._credential
