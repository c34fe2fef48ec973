"""Hyper-V: a Windows host reached over WinRM (ntlm, kerberos, credssp; basic for local accounts), TLS by default,
and the SMB login that reads its VHDX files (the WinRM one unless given)."""

from __future__ import annotations

from typing import Any, Literal

from prefect.blocks.abstract import CredentialsBlock
from pydantic import Field, SecretStr

from hyperexport.providers.hyperv import HypervLogin


class HypervCredentials(CredentialsBlock):
    """A Hyper-V host login over WinRM, and over SMB for its disks.

    Example:
        ```python
        from blocks.hyperv import HypervCredentials

        HypervCredentials(host="hv01.corp.example", user="CORP\\\\migrator", password="...", transport="kerberos").save("hv01")
        ```
    """

    _block_type_name = "Hyperexport Hyper-V Credentials"
    _description = "WinRM login to a Hyper-V host that hyperexport uses to export VMs, and the SMB login that reads their disks."

    host: str = Field(description="Hyper-V host name or address.", min_length=1)
    user: str = Field(description=r"User, e.g. CORP\migrator or migrator@corp.example.", min_length=1)
    password: SecretStr = Field(description="Password of the user.")
    transport: Literal["ntlm", "kerberos", "credssp", "basic"] = Field(
        default="ntlm", description="WinRM authentication (basic: local accounts only, over TLS)."
    )
    use_tls: bool = Field(default=True, description="WinRM over HTTPS (port 5986); off: HTTP (5985), not recommended.")
    port: int | None = Field(default=None, ge=1, le=65535, description="WinRM port; default 5986 with TLS, 5985 without.")
    verify_tls: bool = Field(default=True, description="Verify the host's TLS certificate.")
    ca_bundle: str | None = Field(default=None, description="Path on every worker to a PEM CA bundle for the host's certificate.")
    smb_user: str | None = Field(default=None, description="SMB user that reads the VHDX files; default: the WinRM user.")
    smb_password: SecretStr | None = Field(default=None, description="Password of the SMB user; default: the WinRM password.")
    smb_port: int = Field(default=445, ge=1, le=65535, title="SMB port", description="SMB port of the host (445).")
    smb_encrypt: bool = Field(default=True, title="SMB encryption", description="Encrypt the disks' SMB traffic (SMB 3); turn off only for a host that cannot.")
    allow_insecure_basic: bool = Field(
        default=False, description="Isolated test labs only: allow basic authentication over plain HTTP (password in clear)."
    )

    @property
    def endpoint(self) -> str:
        scheme, default_port = ("https", 5986) if self.use_tls else ("http", 5985)
        return f"{scheme}://{self.host}:{self.port or default_port}/wsman"

    def engine_credentials(self) -> HypervLogin:
        return HypervLogin(
            endpoint=self.endpoint, user=self.user, password=self.password, transport=self.transport,
            verify_tls=self.verify_tls, ca_bundle=self.ca_bundle, smb_user=self.smb_user,
            smb_password=self.smb_password, smb_port=self.smb_port, smb_encrypt=self.smb_encrypt,
            allow_insecure_basic=self.allow_insecure_basic,
        )

    def get_client(self) -> Any:
        return self.engine_credentials().session()
