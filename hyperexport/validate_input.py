"""Input errors in the user's terms: pydantic's validation errors as InvalidInputError, and the parameter an
error is about named the way the user gave it (a CLI flag, a request field)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pydantic

from .errors import HyperExportError, InvalidInputError

M = TypeVar("M", bound=pydantic.BaseModel)
E = TypeVar("E", bound=BaseException)


def describe_validation_error(error: pydantic.ValidationError) -> str:
    parts = []
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"]) or error.title
        got = item.get("input")
        shown = "" if isinstance(got, dict) else f" (got {got!r})"
        parts.append(f"{field}: {item['msg']}{shown}")
    return "; ".join(parts)


def build(model: type[M], data: dict[str, Any] | None = None, *, within: str = "", **fields: Any) -> M:
    """``model.model_validate`` that raises InvalidInputError naming the fields and accepted values.

    ``within`` is where the model sits in a MigrationRequest (``source`` for provider options), so that the
    error's ``field`` is the full dotted path when one field is wrong.
    """
    try:
        return model.model_validate({**(data or {}), **fields})
    except pydantic.ValidationError as error:
        locations = {".".join(str(p) for p in item["loc"]) for item in error.errors()}
        field = None
        if len(locations) == 1 and (only := locations.pop()):
            field = f"{within}.{only}" if within else only
        raise InvalidInputError(f"invalid {model.__name__}: {describe_validation_error(error)}", field=field) from None


def name_field(error: E, name: Callable[[str], str]) -> E:
    """Append, once, how the user calls the parameter ``error.field`` is about: `` (--vm)`` on the command line,
    `` (request field source.source)`` in a flow run. Errors without a field are left as they are."""
    field = getattr(error, "field", None)
    if isinstance(error, HyperExportError) and field and not getattr(error, "field_named", False):
        error.args = (f"{error} ({name(field)})",)
        error.field_named = True  # type: ignore[attr-defined]
    return error


def request_field(field: str) -> str:
    """How a flow run (the UI's form, a deployment's parameters) names a field."""
    return f"request field {field}"
