"""Azure: a service principal (tenant, client id, client secret), the subscription to work in and its cloud."""

from __future__ import annotations

from typing import Any, Literal

from prefect.blocks.abstract import CredentialsBlock
from pydantic import Field, SecretStr

from hyperexport.providers.azure import AzureLogin


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
    cloud: Literal["public", "china", "usgov"] = Field(
        default="public", description="Azure cloud: public, china (Azure China 21Vianet) or usgov (Azure Government)."
    )
    authority_host: str | None = Field(
        default=None,
        description="Azure AD authority, e.g. https://login.microsoftonline.us for Azure Government; default: the cloud's.",
    )
    resource_manager_endpoint: str | None = Field(
        default=None, description="Resource Manager endpoint for a private deployment (https://…); default: the cloud's."
    )
    ca_bundle: str | None = Field(
        default=None, description="PEM file of CA certificates to trust for Azure AD and Resource Manager (a private CA)."
    )

    def login(self) -> AzureLogin:
        return AzureLogin(
            tenant_id=self.tenant_id, client_id=self.client_id, client_secret=self.client_secret, subscription_id=self.subscription_id,
            cloud=self.cloud, authority_host=self.authority_host, resource_manager_endpoint=self.resource_manager_endpoint,
            ca_bundle=self.ca_bundle,
        )

    def get_client(self) -> Any:
        """An ``azure.identity.ClientSecretCredential`` (any Azure SDK client takes it as ``credential``)."""
        return self.login().credential()

    def engine_credentials(self) -> AzureLogin:
        return self.login()
