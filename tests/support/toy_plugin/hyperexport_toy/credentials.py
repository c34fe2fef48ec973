"""What the toy provider is handed as credentials (the block builds it)."""

from __future__ import annotations

import base64

from pydantic import BaseModel, ConfigDict, SecretStr


class ToyLogin(BaseModel):
    model_config = ConfigDict(frozen=True)

    user: str
    password: SecretStr

    def headers(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.user}:{self.password.get_secret_value()}".encode()).decode()
        return {"Authorization": f"Basic {token}"}
