"""Pydantic models as Prefect UI forms.

Prefect builds a deployment's parameter form (and a block's form) from the
JSON schema of its types. When a model holds a field pydantic cannot put in
a JSON schema (``ExportOptions.progress_callback``, a Callable), Prefect
silently falls back to ``Any`` and the UI shows a bare JSON box instead of a
form. ``form(Model)`` keeps validation by ``Model`` but attaches a schema
generated without such fields, with every ``$ref`` inlined so it can be
nested anywhere.

The UI labels a field with its schema ``title`` (a field without one is "Field")
and a choice between types (``anyOf``) with each choice's ``title``. Pydantic
leaves the field title out where the type is a model or an enum, so the UI
would show the type's name ("ExportOptions"); here every field gets a title
(its own, else its name in words) and a type's name becomes words ("Disk
format"). Fields excluded from the model's output (a secret taken out of a URL)
are not shown at all.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, WithJsonSchema
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import PydanticOmit


class _FormSchema(GenerateJsonSchema):
    def handle_invalid_for_json_schema(self, schema: Any, error_info: str) -> Any:
        raise PydanticOmit

    def field_title_should_be_set(self, schema: Any) -> bool:
        return True  # also for model and enum fields, which would otherwise show their type's name

    def field_is_present(self, field: Any) -> bool:
        return not field.get("serialization_exclude") and super().field_is_present(field)


def words(name: str) -> str:
    """A type's name as words: ``DiskFormat`` -> ``Disk format``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name)
    return spaced[:1].upper() + spaced[1:].lower()


def _inline(node: Any, defs: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.removeprefix("#/$defs/")
            if name in seen:  # a recursive model: leave the rest free-form
                return {"type": "object", "title": node.get("title", words(name))}
            definition = {**defs[name], "title": words(defs[name].get("title", name))}
            merged = {**definition, **{k: v for k, v in node.items() if k != "$ref"}}
            return _inline(merged, defs, seen + (name,))
        return {key: _inline(value, defs, seen) for key, value in node.items() if key != "$defs"}
    if isinstance(node, list):
        return [_inline(item, defs, seen) for item in node]
    return node


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The validation JSON schema of ``model``, without fields that have none or are never output, with a
    title for every field, and with no ``$ref``."""
    schema = model.model_json_schema(schema_generator=_FormSchema, mode="validation")
    inlined = _inline(schema, schema.get("$defs", {}))
    inlined["title"] = words(inlined.get("title", model.__name__))
    return inlined


def with_schema(model: type[BaseModel], schema: dict[str, Any]) -> Any:
    """``Annotated[model, WithJsonSchema(schema)]``: validated as ``model``, shown by the Prefect UI as ``schema``."""
    return Annotated[model, WithJsonSchema(schema)]


def form(model: type[BaseModel]) -> Any:
    """``Annotated[model, WithJsonSchema(...)]``: validated as ``model``, shown by the Prefect UI as a form."""
    return with_schema(model, inline_schema(model))
