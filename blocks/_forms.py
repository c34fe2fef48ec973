"""Pydantic models as Prefect UI forms.

Prefect builds a deployment's parameter form (and a block's form) from the
JSON schema of its types. When a model holds a field pydantic cannot put in
a JSON schema (``ExportOptions.progress_callback``, a Callable), Prefect
silently falls back to ``Any`` and the UI shows a bare JSON box instead of a
form. ``form(Model)`` keeps validation by ``Model`` but attaches a schema
generated without such fields, with every ``$ref`` inlined so it can be
nested anywhere.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, WithJsonSchema
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import PydanticOmit


class _WithoutInvalidFields(GenerateJsonSchema):
    def handle_invalid_for_json_schema(self, schema: Any, error_info: str) -> Any:
        raise PydanticOmit


def _inline(node: Any, defs: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.removeprefix("#/$defs/")
            if name in seen:  # a recursive model: leave the rest free-form
                return {"type": "object"}
            merged = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
            return _inline(merged, defs, seen + (name,))
        return {key: _inline(value, defs, seen) for key, value in node.items() if key != "$defs"}
    if isinstance(node, list):
        return [_inline(item, defs, seen) for item in node]
    return node


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The validation JSON schema of ``model``, without fields that have none, and with no ``$ref``."""
    schema = model.model_json_schema(schema_generator=_WithoutInvalidFields, mode="validation")
    return _inline(schema, schema.get("$defs", {}))


def form(model: type[BaseModel]) -> Any:
    """``Annotated[model, WithJsonSchema(...)]``: validated as ``model``, shown by the Prefect UI as a form."""
    return Annotated[model, WithJsonSchema(inline_schema(model))]
