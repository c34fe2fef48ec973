"""Hyper-V: a Windows host reached over WinRM (ntlm, kerberos or credssp), TLS by default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from prefect.blocks.abstract import CredentialsBlock
from pydantic import Field, SecretStr


@dataclass(frozen=True)
class HypervLogin:
    """What the hyperv provider takes as ``credentials`` (its repr masks the password)."""

    endpoint: str
    user: str
    password: SecretStr
    transport: str
    verify_tls: bool
    ca_bundle: str | None

    def session(self) -> Any:
        """A ``winrm.Session`` to run PowerShell on the host."""
        import winrm

        extra: dict[str, Any] = {"server_cert_validation": "validate" if self.verify_tls else "ignore"}
        if self.ca_bundle:
            extra["ca_trust_path"] = self.ca_bundle
        return winrm.Session(
            self.endpoint, auth=(self.user, self.password.get_secret_value()), transport=self.transport, **extra
        )


class HypervCredentials(CredentialsBlock):
    """A Hyper-V host login over WinRM.

    Example:
        ```python
        from blocks.hyperv import HypervCredentials

        HypervCredentials(host="hv01.corp.example", user="CORP\\\\migrator", password="...", transport="kerberos").save("hv01")
        ```
    """

    _block_type_name = "Hyperexport Hyper-V Credentials"
    _description = "WinRM login to a Hyper-V host that hyperexport uses to export VMs."

    host: str = Field(description="Hyper-V host name or address.", min_length=1)
    user: str = Field(description=r"User, e.g. CORP\migrator or migrator@corp.example.", min_length=1)
    password: SecretStr = Field(description="Password of the user.")
    transport: Literal["ntlm", "kerberos", "credssp"] = Field(default="ntlm", description="WinRM authentication.")
    use_tls: bool = Field(default=True, description="WinRM over HTTPS (port 5986); off: HTTP (5985), not recommended.")
    port: int | None = Field(default=None, ge=1, le=65535, description="WinRM port; default 5986 with TLS, 5985 without.")
    verify_tls: bool = Field(default=True, description="Verify the host's TLS certificate.")
    ca_bundle: str | None = Field(default=None, description="Path on every worker to a PEM CA bundle for the host's certificate.")

    @property
    def endpoint(self) -> str:
        scheme, default_port = ("https", 5986) if self.use_tls else ("http", 5985)
        return f"{scheme}://{self.host}:{self.port or default_port}/wsman"

    def engine_credentials(self) -> HypervLogin:
        return HypervLogin(self.endpoint, self.user, self.password, self.transport, self.verify_tls, self.ca_bundle)

    def get_client(self) -> Any:
        return self.engine_credentials().session()
