"""AWS: prefect-aws's AwsCredentials, with the session token kept secret and an optional role to assume.

Both block types work wherever hyperexport takes an aws credentials block:
prefect-aws's own ``aws-credentials`` and this ``hyperexport-aws-credentials``,
which differs in two ways: ``aws_session_token`` is a SecretStr (prefect-aws
keeps it as plain text, so the API and UI would show it), and ``role_arn``
makes the session assume that role (refreshed before it expires, so a
many-hour export keeps working).
"""

from __future__ import annotations

import boto3
from prefect_aws import AwsCredentials
from pydantic import Field, SecretStr

from hyperexport.providers.aws import AwsLogin


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

    def login(self) -> AwsLogin:
        """The engine's credentials type, built from this block's fields."""
        return AwsLogin(
            access_key_id=self.aws_access_key_id, secret_access_key=self.aws_secret_access_key,
            session_token=self.aws_session_token, profile_name=self.profile_name, region_name=self.region_name,
            role_arn=self.role_arn, role_session_name=self.role_session_name, external_id=self.external_id,
            role_duration_seconds=self.role_duration_seconds,
            sts_client_parameters=self.aws_client_parameters.get_params_override(),
        )

    def get_boto3_session(self) -> boto3.Session:
        """A boto3 Session; with ``role_arn``, one whose credentials are the assumed role's, refreshed as needed."""
        return self.login().session()

    def engine_credentials(self) -> AwsLogin:
        login = self.login()
        login.session()  # a role is assumed now: a refused one fails here, named after this block
        return login
