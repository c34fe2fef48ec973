"""The toy cloud's credentials as a Prefect block; it only builds the engine's ToyLogin."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from .credentials import ToyLogin


class ToyCredentials(Block):
    _block_type_name = "Hyperexport Toy Credentials"
    _description = "User and password of the toy cloud (tests only)."

    user: str = Field(description="User name.")
    password: SecretStr = Field(description="Password.")

    def engine_credentials(self) -> ToyLogin:
        return ToyLogin(user=self.user, password=self.password)
