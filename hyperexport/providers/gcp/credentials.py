"""What the gcp provider is handed as credentials: google-auth credentials, the project, and the endpoints.

The hyperexport GCP service account block builds a ``GcpLogin`` from a JSON key; without a block, the
provider uses google-auth's default chain (GOOGLE_APPLICATION_CREDENTIALS, gcloud's login, the metadata
server). ``compute_endpoint`` and ``storage_endpoint`` point the SDKs elsewhere than googleapis.com: a private
endpoint (Private Service Connect), or a local server in the tests.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ...errors import AccessDeniedError, InvalidInputError

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
ENDPOINT = r"^https?://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~/-]*)?$"


def sdk_missing(module: str) -> InvalidInputError:
    return InvalidInputError(f"the gcp provider needs {module}; install it with: pip install 'hyperexport[gcp]'")


class GcpLogin(BaseModel):
    """google-auth credentials (a service account's, or any google.auth.credentials.Credentials) and the
    project to work in. Its repr never shows the credentials."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    credentials: Any = Field(default=None, repr=False, exclude=True, description="google.auth credentials; None: default chain")
    project: str = Field(default="", description="Project of the VMs; '' takes the credentials' own project.")
    compute_endpoint: str | None = Field(
        default=None, pattern=ENDPOINT, description="Compute Engine API root, e.g. https://compute.googleapis.com"
    )
    storage_endpoint: str | None = Field(
        default=None, pattern=ENDPOINT, description="Cloud Storage API root, e.g. https://storage.googleapis.com"
    )

    def resolved(self) -> tuple[Any, str]:
        """The credentials and the project; google-auth's default chain when no credentials were given."""
        if self.credentials is not None:
            return self.credentials, self.project
        try:
            import google.auth
            from google.auth.exceptions import DefaultCredentialsError
        except ImportError:
            raise sdk_missing("google-auth") from None
        try:
            credentials, project = google.auth.default(scopes=list(SCOPES))
        except DefaultCredentialsError:
            raise AccessDeniedError(
                "no GCP credentials: name a GCP service account block, or set GOOGLE_APPLICATION_CREDENTIALS "
                "to a key file (or run gcloud auth application-default login)",
                field="credentials_block",
            ) from None
        return credentials, self.project or project or ""
