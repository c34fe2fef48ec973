"""What identifies a VM for the ``local`` provider: a path or an http(s) URL, and how to reach it."""

from __future__ import annotations

import base64
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class LocalOptions(BaseModel):
    """A disk image, OVA or OVF on this host or behind an http(s) URL."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(
        min_length=1, description="Path or http(s) URL of a disk image (vmdk, vhd, vhdx, qcow2, raw, vdi), an OVA or an OVF."
    )
    vm_name: str | None = Field(default=None, title="VM name", description="Name to record for the VM; defaults to the file name.")
    allow_other_origins: bool = Field(
        default=False, description="Let a remote OVF name disks on another server (refused by default)."
    )
    # Taken out of the URL once: the user:password goes as an Authorization header, the query (a presigned URL's
    # signature) back onto the URL only for the request itself; neither is kept in a URL, a message, a result or
    # (as SecretStr, masked) the flow run's parameters.
    url_credentials: SecretStr | None = Field(default=None, exclude=True, repr=False, description="user:password of the URL")
    url_query: SecretStr | None = Field(default=None, exclude=True, repr=False, description="query string of the URL")

    @model_validator(mode="after")
    def _credentials_out_of_url(self) -> "LocalOptions":
        if urlsplit(self.source).scheme in ("http", "https"):
            parts = urlsplit(self.source)
            if parts.username is not None or parts.password is not None:
                self.url_credentials = SecretStr(f"{unquote(parts.username or '')}:{unquote(parts.password or '')}")
                netloc = parts.netloc.rsplit("@", 1)[1]
                self.source = parts._replace(netloc=netloc).geturl()
            parts = urlsplit(self.source)
            if parts.query:
                self.url_query = SecretStr(parts.query)
                self.source = parts._replace(query="").geturl()
        return self

    def url(self) -> str:
        """The source URL as requests need it: its query put back (never its user:password)."""
        if self.url_query is None:
            return self.source
        return urlsplit(self.source)._replace(query=self.url_query.get_secret_value()).geturl()

    def auth_headers(self) -> dict[str, str]:
        if self.url_credentials is None:
            return {}
        token = base64.b64encode(self.url_credentials.get_secret_value().encode()).decode()
        return {"Authorization": f"Basic {token}"}
