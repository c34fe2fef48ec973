"""One fixed script run on the Hyper-V host over WinRM, its JSON answer read back, its failure translated.

The WS-Management exchange is driven step by step (create shell, command, receive until done, signal, delete)
rather than through ``Session.run_ps``, so that a long Export-VM is bounded by the export timeout, a cancelled
run stops waiting, and the shell is always deleted.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ...errors import AccessDeniedError, HyperExportError, InvalidInputError, TransferError
from ..polling import wait_for
from .credentials import HypervLogin, winrm_module
from .scripts import script_text

log = logging.getLogger(__name__)

#: Largest answer read from the host: every script answers a few KiB.
MAX_OUTPUT = 4 * 2**20


class HostError(TransferError):
    """A script failed on the host; callers turn it into the error that says what to do."""

    def __init__(self, script: str, failure: dict[str, Any]) -> None:
        self.script = script
        self.id = str(failure.get("id") or "")
        self.category = str(failure.get("category") or "")
        self.message = str(failure.get("message") or "").strip()[:600]
        self.hresult = int(failure.get("hresult") or 0)
        super().__init__(f"the Hyper-V host failed {script}: {self.message or self.id or 'no message'}")

    def out_of_space(self) -> bool:
        return self.hresult in (-2147024784, 0x80070070, -2147024857, 0x80070027) or "not enough space" in self.message.lower()

    def denied(self) -> bool:
        return self.category == "PermissionDenied" or self.id.startswith(("AccessDenied", "UnauthorizedAccess"))

    def not_found(self) -> bool:
        return self.category == "ObjectNotFound" or self.id.startswith(("ObjectNotFound", "ItemNotFound", "PathNotFound"))


@dataclass
class HypervHost:
    """Runs the provider's fixed scripts on one host (see scripts.py)."""

    login: HypervLogin
    poll_seconds: float = 1.0

    def __post_init__(self) -> None:
        self._protocol: Any = None

    @property
    def where(self) -> str:
        return f"the Hyper-V host {self.login.host} (WinRM {self.login.endpoint})"

    def protocol(self) -> Any:
        if self._protocol is None:
            self._protocol = self.login.session().protocol
        return self._protocol

    def run(self, script: str, *, timeout: float = 600.0, **arguments: Any) -> Any:
        """The script's JSON answer; ``HostError`` when it failed on the host."""
        command = "powershell -NoProfile -NonInteractive -encodedcommand " + base64.b64encode(
            script_text(script, arguments).encode("utf-16-le")
        ).decode("ascii")
        log.debug("running %s on %s", script, self.login.host)
        with self._translated(script):
            stdout, stderr, code = self._execute(command, script, timeout)
        text = stdout.decode("utf-8", "replace").strip()
        try:
            answer = json.loads(text) if text else None
        except ValueError:
            raise TransferError(
                f"{self.where} answered {script} with something that is not JSON (exit code {code}): {text[:200]!r}"
                f"{'; ' + stderr.decode('utf-8', 'replace')[:300] if stderr else ''}. Is it a Windows host with Hyper-V?"
            ) from None
        if isinstance(answer, dict) and isinstance(answer.get("hyperexport_error"), dict):
            error = HostError(script, answer["hyperexport_error"])
            if error.denied():
                raise AccessDeniedError(
                    f"{self.where} denied {self.login.user!r} {script}: {error.message or error.id}. The user must be "
                    "a member of Hyper-V Administrators (or an administrator) on the host.",
                    field="credentials_block",
                )
            raise error
        if code != 0:
            raise TransferError(f"{self.where} ended {script} with exit code {code}: {stderr.decode('utf-8', 'replace')[:300]}")
        return answer

    def _execute(self, command: str, script: str, timeout: float) -> tuple[bytes, bytes, int]:
        protocol = self.protocol()
        shell = protocol.open_shell(codepage=65001, noprofile=True)
        command_id = None
        try:
            command_id = protocol.run_command(shell, command)
            out: list[bytes] = []
            err: list[bytes] = []
            size = [0]
            winrm = winrm_module()

            def receive() -> int | None:
                try:
                    stdout, stderr, code, done = protocol.get_command_output_raw(shell, command_id)
                except winrm.exceptions.WinRMOperationTimeoutError:
                    return None  # nothing new within the operation timeout: ask again
                out.append(stdout)
                err.append(stderr)
                size[0] += len(stdout) + len(stderr)
                if size[0] > MAX_OUTPUT:
                    raise TransferError(f"{self.where} answered {script} with more than {MAX_OUTPUT} bytes; refusing it")
                return code if done else None

            code = wait_for(receive, what=f"{script} on {self.login.host}", timeout=timeout, interval=0.0)
            return b"".join(out), b"".join(err), code
        finally:
            try:
                if command_id is not None:
                    protocol.cleanup_command(shell, command_id)
                protocol.close_shell(shell, close_session=False)
            except Exception as error:  # noqa: BLE001 - the shell times out on the host by itself
                log.debug("closing the WinRM shell on %s failed: %s", self.login.host, type(error).__name__)

    @contextmanager
    def _translated(self, script: str) -> Iterator[None]:
        """pywinrm's and requests' errors as hyperexport's, the login's secrets never quoted."""
        try:
            yield
        except HyperExportError:
            raise
        except Exception as error:  # noqa: BLE001 - every SDK error is translated
            raise _translate(self, script, error) from None


def _scrub(text: str, login: HypervLogin) -> str:
    for secret in login.secrets():
        text = text.replace(secret, "***")
    return text


def _translate(host: HypervHost, script: str, error: Exception) -> HyperExportError:
    import requests
    from winrm import exceptions as wx

    where, login = host.where, host.login
    if isinstance(error, wx.InvalidCredentialsError):
        return AccessDeniedError(
            f"{where} refused the credentials of {login.user!r} ({login.transport}, HTTP 401). Check the user and "
            "password in the credentials block (a domain user as DOMAIN\\user or user@domain), and that the host "
            f"allows {login.transport} authentication (winrm get winrm/config/service/auth).",
            field="credentials_block",
        )
    if isinstance(error, requests.exceptions.SSLError):
        return AccessDeniedError(
            f"the TLS certificate of {where} was not accepted ({type(error).__name__}). Give the host's CA in the "
            "credentials block's ca_bundle, or fix the host's certificate.",
            field="credentials_block",
        )
    if isinstance(error, (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError, TimeoutError)):
        return TransferError(
            f"cannot reach {where}: {type(error).__name__}. Check the host name and port, that the WinRM listener "
            "runs (winrm quickconfig; 5986 for HTTPS, 5985 for HTTP) and that no firewall blocks it."
        )
    if isinstance(error, wx.WSManFaultError):
        reason = _scrub(str(getattr(error, "reason", "") or ""), login)[:300]
        if getattr(error, "wsman_fault_code", None) == 5 or "access is denied" in reason.lower():
            return AccessDeniedError(
                f"{where} denied {login.user!r} a remote shell ({reason}). Add the user to the host's Remote "
                "Management Users or Administrators, or use one that is."
            )
        return TransferError(f"{where} refused {script} (WS-Management fault: {reason})")
    if isinstance(error, wx.WinRMError) and "not installed" in str(error):
        return InvalidInputError(
            f"WinRM {login.transport} authentication needs a package this worker lacks ({error}); install "
            f"'pywinrm[{login.transport}]' on every worker, or choose another transport in the credentials block",
            field="credentials_block",
        )
    if isinstance(error, (wx.WinRMTransportError, wx.WinRMError)):
        return TransferError(f"{where} failed {script}: {_scrub(str(error), login)[:300]}")
    if isinstance(error, ValueError):
        return InvalidInputError(f"the WinRM endpoint {login.endpoint!r} is not usable: {_scrub(str(error), login)[:200]}")
    return TransferError(f"talking to {where} failed during {script}: {type(error).__name__}")
