"""What the vsphere provider is handed as credentials, and the pyVmomi session made from it.

``VsphereLogin`` is built by the vSphere credentials block (``blocks/vsphere.py``): a host, a user, a password and
the TLS context (verification on unless the block says ``verify_tls: false``; ``ca_bundle`` the CAs that sign the
server's certificate). ``session()`` logs in, yields a ServiceInstance and logs out; every failure to log in
leaves as one of hyperexport's errors, the password never in it.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ...errors import AccessDeniedError, InvalidInputError, TransferError


def pyvmomi() -> tuple[Any, Any]:
    """pyVmomi's ``vim`` and ``vmodl`` (imported on first use, so the engine imports without the SDK)."""
    try:
        from pyVmomi import vim, vmodl
    except ImportError:
        raise InvalidInputError("the vsphere provider needs pyVmomi; install it with: pip install 'hyperexport[vsphere]'") from None
    return vim, vmodl


class VsphereLogin(BaseModel):
    """A vCenter Server or ESXi login (its repr masks the password)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    host: str = Field(min_length=1)
    port: int = Field(default=443, ge=1, le=65535)
    user: str = Field(min_length=1)
    password: SecretStr
    ssl_context: ssl.SSLContext = Field(default_factory=ssl.create_default_context, repr=False)
    #: seconds one vSphere API call may take before the call fails (retried) instead of hanging on a stalled vCenter
    api_timeout_seconds: int = Field(default=300, ge=1, le=3600)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def connect(self) -> Any:
        """A logged-in pyVmomi ServiceInstance (log it out with ``pyVim.connect.Disconnect``)."""
        vim, _ = pyvmomi()
        from pyVim.connect import SmartConnect

        try:
            return SmartConnect(
                host=self.host, port=self.port, user=self.user, pwd=self.password.get_secret_value(),
                sslContext=self.ssl_context, connectionPoolTimeout=60,
                httpConnectionTimeout=self.api_timeout_seconds,
            )  # fmt: skip
        except vim.fault.InvalidLogin:
            raise AccessDeniedError(
                f"vSphere at {self.address} refused the login of {self.user!r}: wrong user name or password. Check the "
                "credentials block's user and password (a locked-out or expired account is refused the same way).",
                field="credentials_block",
            ) from None
        except ssl.SSLCertVerificationError as error:
            raise InvalidInputError(
                f"the TLS certificate of vSphere at {self.address} could not be verified ({error.verify_message}). "
                "Put the CA that signs it in the credentials block's ca_bundle (PEM text or a file path), or, in a "
                "lab only, set verify_tls to false.",
                field="credentials_block",
            ) from None
        except (ssl.SSLError, ConnectionError, socket.timeout, socket.gaierror, http.client.HTTPException, OSError) as error:
            raise TransferError(
                f"cannot reach vSphere at {self.address} ({type(error).__name__}); check the host and port in the "
                "credentials block and the network between the worker and vCenter"
            ) from None

    @contextmanager
    def session(self) -> Iterator[Any]:
        """A logged-in ServiceInstance for the length of the block, logged out after it."""
        from pyVim.connect import Disconnect

        service_instance = self.connect()
        try:
            yield service_instance
        finally:
            try:
                Disconnect(service_instance)
            except Exception:  # noqa: BLE001 - a failed logout leaves a session to expire; never hides the real error
                pass


def require_login(credentials: Any) -> VsphereLogin:
    """The credentials as a VsphereLogin, or a message saying which block to give."""
    pyvmomi()
    if isinstance(credentials, VsphereLogin):
        return credentials
    raise InvalidInputError(
        "the vsphere provider needs a vSphere credentials block (host, user, password; TLS verified with ca_bundle); "
        "name it with credentials_block",
        field="credentials_block",
    )
