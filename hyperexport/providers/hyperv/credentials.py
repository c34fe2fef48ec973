"""What the hyperv provider is handed as credentials: a WinRM login to the Hyper-V host and the SMB login that
reads its disks (the WinRM one unless given). The hyperexport Hyper-V credentials block builds one."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ...errors import InvalidInputError

INSTALL = "pip install 'hyperexport[hyperv]'"


def winrm_module() -> Any:
    try:
        import winrm
    except ImportError:
        raise InvalidInputError(f"the hyperv provider needs pywinrm; install it with: {INSTALL}") from None
    return winrm


def smbclient_module() -> Any:
    try:
        import smbclient
    except ImportError:
        raise InvalidInputError(f"the hyperv provider needs smbprotocol; install it with: {INSTALL}") from None
    # No domain referrals; the per-share DFS referrals smbclient follows regardless are refused by smb.checked_tree.
    smbclient.ClientConfig(skip_dfs=True)
    return smbclient


class HypervLogin(BaseModel):
    """A WinRM endpoint and user (ntlm, kerberos, credssp; basic for local accounts over TLS), and the SMB login
    and port that read the VHDX files. Its repr and dumps mask both passwords."""

    model_config = ConfigDict(frozen=True)

    endpoint: str = Field(description="WinRM URL, e.g. https://hv01.corp.example:5986/wsman.")
    user: str = Field(min_length=1)
    password: SecretStr
    transport: Literal["ntlm", "kerberos", "credssp", "basic"] = "ntlm"
    verify_tls: bool = True
    ca_bundle: str | None = None
    smb_user: str | None = Field(default=None, description="SMB user; default: the WinRM user.")
    smb_password: SecretStr | None = Field(default=None, description="SMB password; default: the WinRM password.")
    smb_port: int = Field(default=445, ge=1, le=65535)
    smb_encrypt: bool = Field(default=True, description="Encrypt SMB traffic (SMB 3); off only for hosts that cannot.")
    operation_timeout_seconds: int = Field(default=20, ge=1, le=3600)
    allow_insecure_basic: bool = Field(default=False, description="Lab only: basic over plain HTTP sends the password in clear.")

    @property
    def host(self) -> str:
        return urlsplit(self.endpoint).hostname or ""

    @property
    def smb_username(self) -> str:
        return self.smb_user or self.user

    def smb_secret(self) -> str:
        return (self.smb_password or self.password).get_secret_value()

    def smb_kwargs(self) -> dict[str, Any]:
        """smbclient's login arguments; ``encrypt=None`` (not False) when off: smbclient cannot turn it off on a
        session that has it."""
        return {"username": self.smb_username, "password": self.smb_secret(), "port": self.smb_port,
                "encrypt": True if self.smb_encrypt else None}  # fmt: skip

    def secrets(self) -> list[str]:
        """Every secret value this login holds, for scrubbing text that may quote one."""
        return [s.get_secret_value() for s in (self.password, self.smb_password) if s is not None and s.get_secret_value()]

    def session(self) -> Any:
        """A ``winrm.Session`` that runs PowerShell on the host."""
        winrm = winrm_module()
        extra: dict[str, Any] = {
            "server_cert_validation": "validate" if self.verify_tls else "ignore",
            "operation_timeout_sec": self.operation_timeout_seconds,
            "read_timeout_sec": self.operation_timeout_seconds + 10,
        }
        if self.ca_bundle:
            extra["ca_trust_path"] = self.ca_bundle
        if self.transport == "basic" and urlsplit(self.endpoint).scheme == "http":
            if not self.allow_insecure_basic:
                raise InvalidInputError(
                    "basic authentication over plain HTTP would send the WinRM password in clear: turn on the "
                    "credentials block's use_tls (WinRM over HTTPS, port 5986) or pick ntlm/kerberos/credssp as its "
                    "transport (allow_insecure_basic exists for isolated test labs only)",
                    field="credentials_block",
                )
            extra["message_encryption"] = "never"
        return winrm.Session(self.endpoint, auth=(self.user, self.password.get_secret_value()), transport=self.transport, **extra)
