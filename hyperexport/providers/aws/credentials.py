"""What the aws provider is handed as credentials, and the boto3 session made from it.

``AwsLogin`` holds keys, a profile, or nothing at all (boto3's default chain: environment, profile, instance
role; it honours AWS_ENDPOINT_URL, which is how the tests reach moto), plus an optional role to assume. The
hyperexport AWS credentials block builds one; prefect-aws's own block hands over a ``boto3.Session``, which
the provider takes as it is.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr

from ...errors import InvalidInputError


def boto3_module() -> Any:
    try:
        import boto3
    except ImportError:
        raise InvalidInputError("the aws provider needs boto3; install it with: pip install 'hyperexport[aws]'") from None
    return boto3


class AwsLogin(BaseModel):
    """AWS keys, profile or default chain, and an optional role to assume (refreshed before it expires, so that a
    many-hour export keeps working)."""

    model_config = ConfigDict(frozen=True)

    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    profile_name: str | None = None
    region_name: str | None = None
    role_arn: str | None = None
    role_session_name: str = "hyperexport"
    external_id: SecretStr | None = None
    role_duration_seconds: int = Field(default=3600, ge=900, le=43200)
    sts_client_parameters: dict[str, Any] = Field(default_factory=dict, description="e.g. endpoint_url of STS")
    _session: Any = PrivateAttr(default=None)

    def session(self) -> Any:
        """The boto3 Session (made once); with ``role_arn``, its credentials are the assumed role's."""
        if self._session is None:
            self._session = self._assumed(self._base()) if self.role_arn else self._base()
        return self._session

    def _base(self) -> Any:
        return boto3_module().Session(
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key.get_secret_value() if self.secret_access_key else None,
            aws_session_token=self.session_token.get_secret_value() if self.session_token else None,
            profile_name=self.profile_name,
            region_name=self.region_name,
        )

    def _assumed(self, base: Any) -> Any:
        from botocore.credentials import RefreshableCredentials
        from botocore.session import get_session

        sts = base.client("sts", **self.sts_client_parameters)
        request: dict[str, Any] = {
            "RoleArn": self.role_arn, "RoleSessionName": self.role_session_name, "DurationSeconds": self.role_duration_seconds,
        }
        if self.external_id:
            request["ExternalId"] = self.external_id.get_secret_value()

        def refresh() -> dict[str, str]:
            creds = sts.assume_role(**request)["Credentials"]
            return {
                "access_key": creds["AccessKeyId"], "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"], "expiry_time": creds["Expiration"].isoformat(),
            }

        botocore_session = get_session()
        botocore_session._credentials = RefreshableCredentials.create_from_metadata(
            metadata=refresh(), refresh_using=refresh, method="sts-assume-role"
        )
        return boto3_module().Session(botocore_session=botocore_session, region_name=base.region_name)
