"""google-api-core's own exceptions, as the SDK raises them, translated to hyperexport errors."""

from __future__ import annotations

import pytest
from google.api_core import exceptions as gx

from hyperexport.errors import AccessDeniedError, TransferError
from hyperexport.providers.gcp.errors import translated


def _raised(error: BaseException) -> BaseException:
    with pytest.raises(Exception) as caught:
        with translated("reading instance web01", subject="instance web01"):
            raise error
    return caught.value


@pytest.mark.parametrize("reason", ["rateLimitExceeded", "userRateLimitExceeded"])
def test_rate_limited_403_is_retried_not_denied(reason):
    error = _raised(gx.Forbidden("Rate Limit Exceeded", errors=[{"reason": reason, "message": "Rate Limit Exceeded"}]))

    assert isinstance(error, TransferError) and "throttled reading instance web01" in str(error)
    assert error.retry_after == 5.0


def test_429_is_retried():
    error = _raised(gx.TooManyRequests("too many"))

    assert isinstance(error, TransferError) and "will retry" in str(error)


def test_denied_403_stays_a_denial():
    error = _raised(gx.Forbidden("Required 'compute.instances.get' permission for 'x'", errors=[{"reason": "forbidden"}]))

    assert isinstance(error, AccessDeniedError) and "lacks the permission compute.instances.get" in str(error)


def test_retryable_refresh_failure_is_retried():
    from google.auth import exceptions as ax

    error = _raised(ax.RefreshError("internal_failure", retryable=True))

    assert isinstance(error, TransferError) and "token service did not answer" in str(error)


def test_refresh_failure_caused_by_the_network_is_retried():
    from google.auth import exceptions as ax

    def refresh() -> None:
        try:
            raise ax.TransportError("connection reset")
        except ax.TransportError as cause:
            raise ax.RefreshError("could not refresh") from cause

    with pytest.raises(TransferError, match="token service did not answer"):
        with translated("reading instance web01"):
            refresh()


def test_refused_refresh_stays_a_denial():
    from google.auth import exceptions as ax

    error = _raised(ax.RefreshError("invalid_grant: Invalid JWT Signature.", retryable=False))

    assert isinstance(error, AccessDeniedError) and error.field == "credentials_block"


def test_exhausted_sdk_retries_are_retried_later():
    error = _raised(gx.RetryError("Timeout of 120.0s exceeded", cause=ConnectionError("reset")))

    assert isinstance(error, TransferError) and "within the SDK's retries" in str(error)
