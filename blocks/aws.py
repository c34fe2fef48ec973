"""AWS: prefect-aws's AwsCredentials, with the session token kept secret and an optional role to assume.

Both block types work wherever hyperexport takes an aws credentials block:
prefect-aws's own ``aws-credentials`` and this ``hyperexport-aws-credentials``,
which differs in two ways: ``aws_session_token`` is a SecretStr (prefect-aws
keeps it as plain text, so the API and UI would show it), and ``role_arn``
makes the session assume that role (refreshed before it expires, so a
many-hour export keeps working).
"""

from __future__ import annotations

from typing import Any

import boto3
from prefect_aws import AwsCredentials
from pydantic import Field, SecretStr


class AwsMigrationCredentials(AwsCredentials):
    """AWS keys, profile or instance role, plus an optional role to assume.

    Example:
        ```python
        from blocks.aws import AwsMigrationCredentials

        AwsMigrationCredentials(
            aws_access_key_id="AKIA...", aws_secret_access_key="...", region_name="eu-west-1",
            role_arn="arn:aws:iam::123456789012:role/hyperexport",
        ).save("aws-prod")
        ```
    """

    _block_type_name = "Hyperexport AWS Credentials"
    _description = "AWS credentials (keys, session token, profile, region, role to assume) for hyperexport."

    aws_session_token: SecretStr | None = Field(
        default=None,
        description="Session token of temporary credentials (only with temporary keys).",
        title="AWS Session Token",
    )
    role_arn: str | None = Field(
        default=None, description="Role to assume with the credentials above, e.g. arn:aws:iam::123456789012:role/migrator."
    )
    role_session_name: str = Field(default="hyperexport", description="Session name recorded in CloudTrail.")
    external_id: SecretStr | None = Field(default=None, description="External id the role's trust policy demands, if any.")
    role_duration_seconds: int = Field(default=3600, ge=900, le=43200, description="Lifetime of each assumed-role session.")

    def __hash__(self) -> int:
        return hash((super().__hash__(), self.role_arn, self.role_session_name, self.external_id, self.role_duration_seconds))

    def _base_session(self) -> boto3.Session:
        return boto3.Session(
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key.get_secret_value() if self.aws_secret_access_key else None,
            aws_session_token=self.aws_session_token.get_secret_value() if self.aws_session_token else None,
            profile_name=self.profile_name,
            region_name=self.region_name,
        )

    def get_boto3_session(self) -> boto3.Session:
        """A boto3 Session; with ``role_arn``, one whose credentials are the assumed role's, refreshed as needed."""
        base = self._base_session()
        if not self.role_arn:
            return base
        from botocore.credentials import RefreshableCredentials
        from botocore.session import get_session

        params = self.aws_client_parameters.get_params_override()
        sts = base.client("sts", **params)
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
        return boto3.Session(botocore_session=botocore_session, region_name=base.region_name)

    def engine_credentials(self) -> boto3.Session:
        return self.get_boto3_session()
