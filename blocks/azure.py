"""Azure: a service principal (tenant, client id, client secret) and the subscription to work in."""

from __future__ import annotations

from typing import Any, NamedTuple

from prefect.blocks.abstract import CredentialsBlock
from pydantic import Field, SecretStr


class AzureLogin(NamedTuple):
    """What the azure provider takes as ``credentials``: an azure-identity credential and its subscription."""

    credential: Any
    subscription_id: str


class AzureServicePrincipal(CredentialsBlock):
    """An Azure AD (Entra ID) service principal, authenticated with azure-identity's ClientSecretCredential.

    Example:
        ```python
        from blocks.azure import AzureServicePrincipal

        AzureServicePrincipal(
            tenant_id="00000000-0000-0000-0000-000000000000",
            client_id="11111111-1111-1111-1111-111111111111",
            client_secret="...",
            subscription_id="22222222-2222-2222-2222-222222222222",
        ).save("azure-prod")
        ```
    """

    _block_type_name = "Hyperexport Azure Service Principal"
    _description = "Service principal (client secret) that hyperexport uses to export Azure VMs and disks."

    tenant_id: str = Field(description="Directory (tenant) id of the service principal.", min_length=1)
    client_id: str = Field(description="Application (client) id of the service principal.", min_length=1)
    client_secret: SecretStr = Field(description="Client secret of the service principal.")
    subscription_id: str = Field(description="Subscription that holds the VMs to migrate.", min_length=1)
    authority_host: str | None = Field(
        default=None,
        description="Azure AD authority, e.g. https://login.microsoftonline.us for Azure Government; default: public cloud.",
    )

    def get_client(self) -> Any:
        """An ``azure.identity.ClientSecretCredential`` (any Azure SDK client takes it as ``credential``)."""
        from azure.identity import ClientSecretCredential

        extra = {"authority": self.authority_host} if self.authority_host else {}
        return ClientSecretCredential(
            tenant_id=self.tenant_id, client_id=self.client_id,
            client_secret=self.client_secret.get_secret_value(), **extra,
        )

    def engine_credentials(self) -> AzureLogin:
        return AzureLogin(self.get_client(), self.subscription_id)
