"""GCP: a service account key (the JSON file, kept as a secret) and the project to work in."""

from __future__ import annotations

import json
from typing import Any

from prefect.blocks.abstract import CredentialsBlock
from pydantic import Field, SecretStr, field_validator

from hyperexport.providers.gcp import GcpLogin
from hyperexport.providers.gcp.credentials import ENDPOINT

_KEY_FIELDS = ("type", "client_email", "private_key", "token_uri")

__all__ = ["GcpLogin", "GcpServiceAccount"]


class GcpServiceAccount(CredentialsBlock):
    """A GCP service account key, used through google-auth (lighter than prefect-gcp for what hyperexport needs).

    Example:
        ```python
        from pathlib import Path
        from blocks.gcp import GcpServiceAccount

        GcpServiceAccount(service_account_info=Path("key.json").read_text(), project="my-project").save("gcp-prod")
        ```
    """

    _block_type_name = "Hyperexport GCP Service Account"
    _description = "Service account key that hyperexport uses to export GCP disks and images."

    service_account_info: SecretStr = Field(
        description="The whole JSON key file of the service account (IAM → Service accounts → Keys → Add key → JSON)."
    )
    project: str | None = Field(default=None, description="Project of the VMs; default: the key's project_id.")
    compute_endpoint: str | None = Field(
        default=None, pattern=ENDPOINT,
        description="Compute Engine API root for a private endpoint; default: https://compute.googleapis.com.",
    )
    storage_endpoint: str | None = Field(
        default=None, pattern=ENDPOINT,
        description="Cloud Storage API root for a private endpoint; default: https://storage.googleapis.com.",
    )

    @field_validator("service_account_info")
    @classmethod
    def _is_a_key_file(cls, value: SecretStr) -> SecretStr:
        # The messages name fields, never values: the key is a secret.
        try:
            data = json.loads(value.get_secret_value())
        except ValueError:
            raise ValueError("service_account_info is not JSON; paste the whole JSON key file of the service account") from None
        if not isinstance(data, dict):
            raise ValueError("service_account_info must be the JSON object of a service account key file")  # noqa: TRY004 - pydantic wants ValueError
        missing = [key for key in _KEY_FIELDS if not data.get(key)]
        if missing:
            raise ValueError(f"service_account_info lacks {', '.join(missing)}; paste the whole JSON key file")
        return value

    def key_info(self) -> dict[str, Any]:
        return json.loads(self.service_account_info.get_secret_value())

    @property
    def effective_project(self) -> str | None:
        return self.project or self.key_info().get("project_id")

    def get_client(self) -> Any:
        """``google.oauth2.service_account.Credentials`` for the cloud-platform scope."""
        from google.oauth2 import service_account

        return service_account.Credentials.from_service_account_info(
            self.key_info(), scopes=["https://www.googleapis.com/auth/cloud-platform"]
        )

    def engine_credentials(self) -> GcpLogin:
        return GcpLogin(
            credentials=self.get_client(), project=self.effective_project or "",
            compute_endpoint=self.compute_endpoint, storage_endpoint=self.storage_endpoint,
        )
