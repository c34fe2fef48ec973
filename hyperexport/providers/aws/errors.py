"""botocore errors translated into hyperexport's exception tree, in one place.

    with translated("describing instance i-0abc", service="ec2", region="eu-west-1", subject="instance i-0abc"):
        ec2.describe_instances(InstanceIds=["i-0abc"])

Authentication and authorisation failures become ``AccessDeniedError`` and
missing resources ``SourceNotFoundError`` (both permanent: never retried);
throttling, 5xx and network failures that outlived botocore's own retries
become ``TransferError`` (transient: the Prefect task or the transfer engine
retries). AWS's own messages are kept only where they help and never for
credential errors; nothing from the request (keys, signatures) is quoted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from ...errors import (
    AccessDeniedError,
    HyperExportError,
    InvalidInputError,
    SourceNotFoundError,
    TransferError,
)

CREDENTIAL_CODES = frozenset({
    "AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException",
    "InvalidAccessKeyId", "ExpiredToken", "ExpiredTokenException", "RequestExpired", "InvalidToken",
    "MissingAuthenticationToken", "IncompleteSignature",
})  # fmt: skip
PERMISSION_CODES = frozenset({"UnauthorizedOperation", "AccessDenied", "AccessDeniedException", "Forbidden", "AllAccessDisabled"})
THROTTLING_CODES = frozenset({
    "RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestThrottled", "RequestThrottledException",
    "SlowDown", "TooManyRequestsException", "EC2ThrottledException", "BandwidthLimitExceeded",
})  # fmt: skip
SERVER_CODES = frozenset({
    "InternalError", "InternalFailure", "InternalServerError", "InternalServerException", "ServiceUnavailable",
    "ServiceUnavailableException", "Unavailable", "RequestTimeout", "RequestTimeoutException",
})  # fmt: skip
NOT_FOUND_CODES = frozenset({"NoSuchBucket", "NoSuchKey", "NotFound", "ResourceNotFoundException", "404"})

#: S3 operations whose IAM action has another name.
_IAM_ACTIONS = {"HeadObject": "GetObject", "HeadBucket": "ListBucket", "ListObjectsV2": "ListBucket", "DeleteObjects": "DeleteObject"}

_ACCESS_KEY = re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b")


def aws_message(error) -> str:
    """AWS's own message of a ClientError, shortened, access key ids masked."""
    response = getattr(error, "response", None) or {}
    message = str(response.get("Error", {}).get("Message") or "").strip()
    if message.startswith("<"):  # an XML body botocore could not parse: say nothing rather than dump it
        return ""
    message = _ACCESS_KEY.sub(lambda m: m.group(1) + "…", message)
    return message[:400]


def client_error(
    error, *, action: str, service: str, region: str | None, subject: str | None = None
) -> HyperExportError:
    """The hyperexport error for a botocore ``ClientError`` raised while doing ``action``."""
    info = error.response.get("Error", {})
    code = str(info.get("Code") or "")
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    operation = getattr(error, "operation_name", "") or ""
    aws = aws_message(error)
    where = f" in region {region}" if region else ""
    if code in CREDENTIAL_CODES or (status == 401):
        return AccessDeniedError(
            f"AWS did not accept the credentials while {action} ({code or status}). Check the credentials block "
            "(or AWS_PROFILE / AWS_ACCESS_KEY_ID), that the access key is active and that a session token has not expired."
        )
    if code == "OptInRequired":
        return AccessDeniedError(
            f"region {region} is not enabled for this AWS account ({code}). Enable it in the account settings or choose "
            "another region.",
            field="source.region",
        )
    if code in PERMISSION_CODES or status == 403:
        permission = f"{service}:{_IAM_ACTIONS.get(operation, operation)}" if operation else f"a {service} permission"
        return AccessDeniedError(
            f"AWS denied {action}{where} ({code or status}): the credentials lack {permission}. Grant it to the IAM "
            "user or role, or use credentials that have it."
        )
    if code.endswith(".NotFound") or code in NOT_FOUND_CODES or status == 404:
        what = subject or "the resource"
        return SourceNotFoundError(
            f"{what} was not found{where} ({code or status}). Check the id or name and the region: instances, images, "
            "snapshots and buckets belong to one region.",
            field="source.region",
        )
    if code.endswith(".Malformed"):
        return InvalidInputError(f"{subject or 'the id'} is not a valid AWS id ({code}): {aws or 'malformed'}")
    if code in THROTTLING_CODES or status == 429:
        err = TransferError(
            f"AWS throttled {action}{where} ({code or status}) even after retrying with backoff. Lower the connections "
            "or run again later.",
            field="export.connections",
        )
        err.retry_after = 5.0  # type: ignore[attr-defined]
        return err
    if code in SERVER_CODES or status >= 500:
        return TransferError(f"AWS failed {action}{where} with a server error ({code or status}); will retry. {aws}".strip())
    if code in ("IncorrectState", "IncorrectInstanceState", "InvalidSnapshot.InUse", "InvalidState"):
        return InvalidInputError(f"{subject or 'the resource'} is in a state that does not allow {action} ({code}): {aws}")
    return InvalidInputError(f"AWS refused {action}{where} ({code or status}): {aws or 'no details given'}")


def botocore_error(error, *, action: str, service: str, region: str | None) -> HyperExportError:
    """The hyperexport error for a ``BotoCoreError`` (no answer from AWS, or a local problem)."""
    from botocore import exceptions as bx

    if isinstance(error, (bx.NoCredentialsError, bx.PartialCredentialsError, bx.CredentialRetrievalError)):
        return AccessDeniedError(
            f"no usable AWS credentials for {action}: name an AwsCredentials block or set "
            "AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.",
            field="credentials_block",
        )
    if isinstance(error, bx.NoRegionError):
        return InvalidInputError("no AWS region given; set the region", field="source.region")
    if isinstance(error, bx.ParamValidationError):
        return InvalidInputError(f"invalid request while {action}: {error}")
    if isinstance(error, bx.EndpointConnectionError):
        return TransferError(
            f"cannot reach AWS {service} in region {region} while {action}. Check the region (a typo gives an endpoint "
            "that does not exist) and the network or proxy settings.",
            field="source.region",
        )
    if isinstance(error, (bx.ConnectTimeoutError, bx.ReadTimeoutError, bx.ConnectionClosedError)):
        return TransferError(f"AWS {service} did not answer in time while {action} ({type(error).__name__}); will retry")
    return TransferError(f"talking to AWS {service} failed while {action}: {type(error).__name__}")


@contextmanager
def translated(action: str, *, service: str, region: str | None, subject: str | None = None) -> Iterator[None]:
    """Run the block; botocore errors leave it as hyperexport errors (chained)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as error:
        raise client_error(error, action=action, service=service, region=region, subject=subject) from error
    except BotoCoreError as error:
        raise botocore_error(error, action=action, service=service, region=region) from error


def error_code(error: BaseException) -> str:
    """The AWS error code behind a translated error (or a ClientError), '' if none."""
    cause = error if hasattr(error, "response") else error.__cause__
    response = getattr(cause, "response", None) or {}
    return str(response.get("Error", {}).get("Code") or "")
