"""azure-core errors translated into hyperexport's exception tree, in one place.

    with translated("reading VM web01 in resource group rg1", subject="VM web01 in resource group rg1"):
        compute.virtual_machines.get("rg1", "web01")

A refused sign-in (wrong tenant, client id or secret) and a missing role assignment become
``AccessDeniedError`` (never retried; the latter names the action to allow), a missing resource or resource
group ``SourceNotFoundError``, throttling (429) and 5xx that outlived azure-core's own retries (which honour
Retry-After) and network failures ``TransferError``. Nothing of the request (tokens, SAS signatures) is quoted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ...errors import AccessDeniedError, HyperExportError, InvalidInputError, SourceNotFoundError, TransferError

_ACTION = re.compile(r"perform action '([^']+)'")
_SECRETS = re.compile(r"(sig|se|sv|sp|sr|skoid|sktid|skt|ske|sks|skv)=[^&\s'\"]+", re.IGNORECASE)


def _code(error: Exception) -> str:
    inner = getattr(error, "error", None)
    return str(getattr(inner, "code", None) or "")


def _message(error: Exception) -> str:
    inner = getattr(error, "error", None)
    text = str(getattr(inner, "message", None) or getattr(error, "message", None) or error)
    return _SECRETS.sub(r"\1=REDACTED", text.splitlines()[0] if text else "")


@contextmanager
def translated(action: str, *, subject: str | None = None) -> Iterator[None]:
    """Run an Azure call; its failure as one of hyperexport's errors, saying what was being done."""
    try:
        yield
    except HyperExportError:
        raise
    except Exception as error:
        translated_error = translate(error, action, subject)
        if translated_error is None:
            raise
        raise translated_error from None


def translate(error: Exception, action: str, subject: str | None = None) -> HyperExportError | None:
    from azure.core import exceptions as azure_errors

    if isinstance(error, azure_errors.ClientAuthenticationError):
        return AccessDeniedError(
            f"{action}: Azure refused the service principal's sign-in ({_aad_reason(error)}). Check the tenant id, "
            "client id and client secret of the credentials block (a secret may have expired), and the cloud or "
            "authority it signs in to.",
            field="credentials_block",
        )
    if isinstance(error, (azure_errors.ServiceRequestError, azure_errors.ServiceResponseError)):
        return TransferError(f"{action}: could not reach Azure ({type(error).__name__}); check the network and retry")
    if not isinstance(error, azure_errors.HttpResponseError):
        return None
    status, code, message = error.status_code, _code(error), _message(error)
    if status == 404 or code in ("ResourceNotFound", "ResourceGroupNotFound", "NotFound"):
        what = "the resource group" if code == "ResourceGroupNotFound" else (subject or "the resource")
        return SourceNotFoundError(f"{action}: {what} does not exist ({code or status}: {message}). Check the name and subscription.")
    if status == 403 or code in ("AuthorizationFailed", "LinkedAuthorizationFailed"):
        found = _ACTION.search(message)
        allowed = f"the action {found.group(1)}" if found else "this operation"
        return AccessDeniedError(
            f"{action}: the service principal has no role assignment that allows {allowed} ({code or status}). "
            "Assign it a role that includes that action (e.g. Disk Snapshot Contributor with Virtual Machine "
            "Reader, or a custom role) on the resource group, then run again."
        )
    if status == 429 or (status is not None and status >= 500):
        retry = TransferError(f"{action}: Azure answered {status} {code} ({message}); retrying later")
        response: Any = error.response
        after = response.headers.get("Retry-After") if response is not None else None
        if after and after.isdigit():
            setattr(retry, "retry_after", float(after))
        return retry
    return InvalidInputError(f"{action}: Azure refused it ({status} {code}: {message})")


def _aad_reason(error: Exception) -> str:
    text = str(getattr(error, "message", None) or error)
    found = re.search(r"AADSTS\d+", text)
    if found:
        return found.group(0)
    if "authority configuration" in text:
        return "the authority does not know this tenant"
    return "authentication failed"
