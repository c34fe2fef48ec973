"""The migrate-vm request as the Prefect UI shows it: a choice of provider, then that provider's own fields.

``MigrationRequest`` (the engine's model) stays what validates a request; its ``source`` is a plain mapping that
the provider parses. For the UI, ``RequestForm`` attaches another JSON schema to it: an ``anyOf`` with one
variant per registered provider (``registry.providers()``, so a new provider appears here without editing this
file), each the whole request titled with the provider's title, ``provider`` set to that provider's name, and
``source`` replaced by the provider's options model (``Provider.options_type``) with its titles, descriptions
and types; options excluded from the model's output (a password taken out of a URL) are left out.

Prefect's UI (3.8.8, V2 and V1) draws an ``anyOf`` as a row of buttons labelled with each variant's ``title``
and, below it, the chosen variant's form (before the request's own ``properties``, kept for other readers). It
does not read ``discriminator``, and shows a ``const`` field as a plain text box: the variants are told apart
by ``provider`` being refused in every variant but its own (``not``), and the field shows the provider's name
as its default. When the UI opens a form on an existing value it picks the variant with the
most keys in common with the value; every variant has the same keys, so an existing value opens on the first
provider's button (choose the provider again to see the value in its own fields). The V1 UI does that again
on every change of the value, so there the choice falls back to the first provider while one types (Prefect
issue #18084); the V2 UI, Prefect 3.8.8's default, keeps the choice.

The server checks a flow run's parameters against this schema before it creates the run (Prefect's best-match
error message), so the schema refuses no more than before: an unknown provider is refused by the request's
own ``provider`` enum (an unknown name passes every variant's ``not``), and which source options are required
or unknown the provider says itself in the flow's preflight, naming the field ("Required." starts the
description of a required option). A source option of the wrong type is refused by the server, naming the
field. The fields the variants share (``export``, ...) are drawn from each variant with their types, choices
and titles but checked once, by the request's own properties: a bad value there (a negative connection count,
a missing output directory) is refused naming its field, not as "not valid under any of the given schemas".
"""

from __future__ import annotations

import copy
from typing import Any

from hyperexport.migration import MigrationRequest
from hyperexport.providers import registry
from hyperexport.providers.contract import Provider

from ._forms import inline_schema, with_schema

# The form's words for MigrationRequest's own fields (their descriptions come from the model).
TITLES = {
    "provider": "Provider",
    "source": "Source VM",
    "export": "Export and download",
    "convert": "Convert for KVM",
    "converter": "Converter",
    "convert_options": "Conversion options",
    "converter_config": "Converter settings",
    "credentials_block": "Credentials block",
}


def provider_variant(request: dict[str, Any], provider: Provider[Any, Any], others: list[str]) -> dict[str, Any]:
    """``request`` (MigrationRequest's form schema) for one provider: its name set, its own source fields."""
    variant = copy.deepcopy(request)
    properties = variant["properties"]
    properties["provider"] = {
        "title": properties["provider"]["title"],
        "description": f"{provider.name}: set by the choice of {provider.title} above.",
        "type": "string",
        "default": provider.name,
    }
    if others:
        # Another provider's name is refused here; an unknown one passes, and the whole request's own
        # ``provider`` check (below) names it in the server's refusal.
        properties["provider"]["not"] = {"enum": others}
    properties["source"] = _source(provider, properties["source"])
    for name in properties.keys() - {"provider", "source"}:
        properties[name] = _unchecked(properties[name])
    variant.pop("required", None)
    variant["title"] = provider.title
    variant["description"] = f"A VM from {provider.title} ({provider.name})."
    return variant


#: What the request's own properties check, once; in a variant they would make every variant fail alike on one
#: bad shared value, and the server's message would then be "not valid under any of the given schemas".
_CHECKS = frozenset({
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern",
    "minItems", "maxItems", "required", "additionalProperties", "format",
})


def _unchecked(schema: Any) -> Any:
    """A shared field as a variant shows it: its form (type, enum, title, description, default), not its checks."""
    if isinstance(schema, dict):
        return {key: _named(value) if key == "properties" else _unchecked(value)
                for key, value in schema.items() if key not in _CHECKS}  # fmt: skip
    if isinstance(schema, list):
        return [_unchecked(item) for item in schema]
    return schema


def _named(properties: dict[str, Any]) -> dict[str, Any]:
    """A ``properties`` mapping: its keys are field names (``format`` is one), never checks to drop."""
    return {name: _unchecked(field) for name, field in properties.items()}


def _source(provider: Provider[Any, Any], field: dict[str, Any]) -> dict[str, Any]:
    """The provider's options as the request's ``source``: their fields, titles, descriptions and types. Which
    are required, and which other keys are refused, the provider itself says, in the flow's preflight."""
    options = inline_schema(provider.options_type)
    required = set(options.pop("required", ()))
    options.pop("additionalProperties", None)
    for name, option in options.get("properties", {}).items():
        if name in required:
            option["description"] = " ".join(part for part in ("Required.", option.get("description")) if part)
    return {**options, "title": field["title"], "description": options.get("description") or field.get("description", "")}


def request_schema() -> dict[str, Any]:
    """The JSON schema of the migrate-vm request for the Prefect UI: one variant per registered provider."""
    request = inline_schema(MigrationRequest)
    for name, title in TITLES.items():
        request["properties"][name]["title"] = title
    providers = registry.providers()
    names = [provider.name for provider in providers]
    variants = [provider_variant(request, p, [n for n in names if n != p.name]) for p in providers]
    # The request as a whole, as before: what the server checks besides the variants, and what a reader of the
    # schema other than the UI (which draws the variants only) sees; its ``provider`` enum names an unknown
    # provider in the server's refusal.
    request["properties"]["provider"]["enum"] = names
    request["title"] = "Migration request"
    request["anyOf"] = variants
    return request


RequestForm = with_schema(MigrationRequest, request_schema())
