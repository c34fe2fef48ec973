"""google-api-core errors and failed Compute Engine operations as hyperexport errors, in one place.

    with translated("reading instance web01", subject="instance web01"):
        instances.get(project=..., zone=..., instance="web01")

403s name the missing IAM permission when Google says it ("Required 'compute.disks.createSnapshot'
permission for ..."), quota errors name the quota ("Quota 'CPUS' exceeded"), 404s say which of project,
zone or resource is missing. Nothing of the request (tokens, keys) is quoted: Google's messages name
resources and permissions only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ...errors import (
    AccessDeniedError,
    HyperExportError,
    InvalidInputError,
    PermanentError,
    SourceNotFoundError,
    TransferError,
)

_PERMISSION = re.compile(r"Required '([a-zA-Z0-9_.]+)' permission")
_QUOTA = re.compile(r"Quota '([A-Z0-9_]+)' exceeded")
_MISSING = re.compile(r"The resource '([^']+)' was not found")
# Compute Engine answers a rate limit with 403 and one of these reasons: a retry fixes it, unlike a denial.
_RATE_LIMITED = {"rateLimitExceeded", "userRateLimitExceeded"}


class QuotaExceededError(PermanentError):
    """A quota of the project stops the export worker; it will not grow by itself."""


class WorkerFailedError(PermanentError):
    """The export worker's script failed: the same disks would fail the same way."""


def _short(text: str) -> str:
    return " ".join(str(text).split())[:400]


def _not_found(message: str, subject: str | None) -> SourceNotFoundError:
    match = _MISSING.search(message)
    path = match.group(1) if match else ""
    parts = path.split("/")
    if len(parts) == 2 and parts[0] == "projects":
        return SourceNotFoundError(
            f"project {parts[1]} was not found, or the credentials cannot see it. Check the project id (not its name "
            "or number) and that the service account belongs to it or was granted access.",
            field="source.project",
        )
    if len(parts) == 4 and parts[2] == "zones":
        return SourceNotFoundError(
            f"zone {parts[3]} does not exist in project {parts[1]}. Use a zone like europe-west1-b "
            "(gcloud compute zones list).",
            field="source.zone",
        )
    if len(parts) >= 6 and parts[4] in ("instances", "disks"):
        kind = parts[4][:-1]
        return SourceNotFoundError(
            f"{kind} {parts[5]} was not found in zone {parts[3]} of project {parts[1]}. Check the name and the zone: "
            "instances and disks belong to one zone.",
            field=f"source.{kind}",
        )
    if len(parts) >= 5 and parts[3] == "snapshots":
        return SourceNotFoundError(f"snapshot {parts[4]} was not found in project {parts[1]}", field="source.snapshot")
    return SourceNotFoundError(f"{subject or 'the resource'} was not found ({_short(message) or 404})")


def api_error(error: Any, *, action: str, subject: str | None = None) -> HyperExportError:
    """The hyperexport error for a google.api_core ``GoogleAPICallError`` raised while doing ``action``."""
    from google.api_core import exceptions as gx

    message = _short(getattr(error, "message", "") or "")
    reasons = {str(getattr(e, "get", lambda *_: "")("reason") or "") for e in (getattr(error, "errors", None) or []) if isinstance(e, dict)}
    quota = _QUOTA.search(message)
    if quota or "quotaExceeded" in reasons or "QUOTA_EXCEEDED" in message:
        name = quota.group(1) if quota else "a quota"
        return QuotaExceededError(
            f"{action} failed: quota {name} exceeded ({message}). Ask for more quota in IAM & Admin → Quotas, or use a "
            "smaller machine_type or another zone.",
            field="source.machine_type",
        )
    if isinstance(error, gx.TooManyRequests) or reasons & _RATE_LIMITED:
        err = TransferError(f"Google throttled {action} (rate limit); will retry. Run fewer exports at once if it persists.")
        err.retry_after = 5.0  # type: ignore[attr-defined]
        return err
    if isinstance(error, gx.Unauthorized):
        return AccessDeniedError(
            f"Google did not accept the credentials while {action} (401). Check the service account key in the "
            "credentials block: it may be deleted or disabled.",
            field="credentials_block",
        )
    if isinstance(error, gx.Forbidden):
        permission = _PERMISSION.search(message)
        lacks = f"the permission {permission.group(1)}" if permission else "a permission"
        return AccessDeniedError(
            f"Google denied {action}: the service account lacks {lacks}. Grant it (roles/compute.storageAdmin and "
            "roles/compute.instanceAdmin.v1 hold what the export needs, roles/storage.objectAdmin on the bucket), "
            "or use credentials that have it."
        )
    if isinstance(error, gx.NotFound):
        return _not_found(message, subject)
    if isinstance(error, gx.ServerError):
        return TransferError(f"Google failed {action} with a server error ({error.code}); will retry. {message}".strip())
    if isinstance(error, gx.Conflict):
        return InvalidInputError(f"{action} failed: {subject or 'the resource'} exists already or is busy ({message})")
    return InvalidInputError(f"Google refused {action} ({getattr(error, 'code', '?')}): {message or 'no details given'}")


def operation_error(operation: Any, *, action: str, subject: str | None = None) -> HyperExportError:
    """The error of a finished Compute Engine operation (its ``error.errors`` and HTTP status)."""
    from google.api_core import exceptions as gx

    errors = list(operation.error.errors) if operation.error else []
    codes = [e.code for e in errors]
    message = "; ".join(_short(e.message) for e in errors) or _short(operation.http_error_message)
    status = int(operation.http_error_status_code or 0) or 400
    if "QUOTA_EXCEEDED" in codes and not _QUOTA.search(message):
        message = f"QUOTA_EXCEEDED: {message}"
    return api_error(gx.from_http_status(status, message), action=action, subject=subject)


@contextmanager
def translated(action: str, *, subject: str | None = None) -> Iterator[None]:
    """Run the block; google-api-core and transport errors leave it as hyperexport errors (chained)."""
    from google.api_core import exceptions as gx
    from google.auth import exceptions as ax

    try:
        yield
    except gx.GoogleAPICallError as error:
        raise api_error(error, action=action, subject=subject) from error
    except gx.RetryError as error:  # the SDK's retries ran out (not a GoogleAPICallError)
        raise TransferError(f"Google did not answer {action} within the SDK's retries ({_short(str(error))}); will retry") from error
    except ax.RefreshError as error:
        if getattr(error, "retryable", False) or isinstance(error.__cause__, ax.TransportError):
            raise TransferError(f"the GCP token service did not answer while {action}; will retry") from error
        raise AccessDeniedError(
            f"the GCP credentials could not get a token while {action}: the key was refused or its token service is "
            "unreachable. Check the service account key in the credentials block.",
            field="credentials_block",
        ) from None
    except (ax.TransportError, ConnectionError, TimeoutError) as error:
        raise TransferError(f"no answer from Google while {action} ({type(error).__name__}); will retry") from error
    except OSError as error:
        raise TransferError(f"network failure while {action} ({type(error).__name__}); will retry") from error
