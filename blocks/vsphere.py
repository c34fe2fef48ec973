"""vSphere: a vCenter or ESXi host, a user and a password; TLS verification on by default."""

from __future__ import annotations

import ssl
from typing import Any

from prefect.blocks.abstract import CredentialsBlock
from pydantic import Field, SecretStr

from hyperexport.providers.vsphere.credentials import VsphereLogin

from ._secrets import pem_or_path


class VsphereCredentials(CredentialsBlock):
    """A vCenter Server or ESXi login.

    Example:
        ```python
        from blocks.vsphere import VsphereCredentials

        VsphereCredentials(host="vcenter.example.com", user="migrator@vsphere.local", password="...").save("vcenter")
        ```
    """

    _block_type_name = "Hyperexport vSphere Credentials"
    _description = "vCenter Server or ESXi login that hyperexport uses to export VMs as OVF."

    host: str = Field(description="vCenter Server or ESXi host name or address.", min_length=1)
    port: int = Field(default=443, ge=1, le=65535, description="HTTPS port of the vSphere API.")
    user: str = Field(description="User name, e.g. migrator@vsphere.local.", min_length=1)
    password: SecretStr = Field(description="Password of the user.")
    verify_tls: bool = Field(default=True, description="Verify the server's TLS certificate (leave on outside a lab).")
    ca_bundle: str | None = Field(
        default=None,
        description="CA certificates that sign the server's certificate: PEM text, or a path to a PEM file on every worker.",
    )

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(**pem_or_path(self.ca_bundle))
        if not self.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def engine_credentials(self) -> VsphereLogin:
        return VsphereLogin(host=self.host, port=self.port, user=self.user, password=self.password, ssl_context=self.ssl_context())

    def get_client(self) -> Any:
        """A connected pyVmomi ServiceInstance."""
        return self.engine_credentials().connect()
