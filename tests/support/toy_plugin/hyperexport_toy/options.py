"""What identifies a VM in the toy cloud."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ToyOptions(BaseModel):
    """A VM of the toy cloud."""

    model_config = ConfigDict(extra="forbid")

    vm: str = Field(min_length=1, description="Name of the VM in the toy cloud.")
    api_url: str = Field(min_length=1, description="Base URL of the toy cloud's API, e.g. http://127.0.0.1:8080.")
