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
