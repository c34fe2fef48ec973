"""Turn pydantic's validation errors into InvalidInputError with a readable message."""

from __future__ import annotations

from typing import Any, TypeVar

import pydantic

from .errors import InvalidInputError

M = TypeVar("M", bound=pydantic.BaseModel)


def describe_validation_error(error: pydantic.ValidationError) -> str:
    parts = []
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"]) or error.title
        got = item.get("input")
        shown = "" if isinstance(got, dict) else f" (got {got!r})"
        parts.append(f"{field}: {item['msg']}{shown}")
    return "; ".join(parts)


def build(model: type[M], data: dict[str, Any] | None = None, **fields: Any) -> M:
    """``model.model_validate`` that raises InvalidInputError naming the fields and accepted values."""
    try:
        return model.model_validate({**(data or {}), **fields})
    except pydantic.ValidationError as error:
        raise InvalidInputError(f"invalid {model.__name__}: {describe_validation_error(error)}") from None
