"""The UI's forms of a migration, as the server holds them: the migrate-vm deployment's parameter schema and the
migration-plan block's schema offer a choice of provider, then that provider's own fields, every field with a
human title; and a run keeps the name it was created with, also through a retry."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from prefect.deployments import run_deployment
from prefect.states import AwaitingRetry
from support.prefect_stack import client, wait_for_state

import hyperexport.models as engine_models
from hyperexport.migration import MigrationRequest
from hyperexport.providers import registry

DEPLOYMENT = "migrate-vm/migrate-vm"
TYPE_NAME = re.compile(r"[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+")  # ProviderName, ExportOptions: a class's name


def _type_names() -> set[str]:
    names = {MigrationRequest.__name__, "ConverterConfig", "ConvertOptions", "ExportOptions", "ProviderName"}
    names |= {name for name, value in vars(engine_models).items() if isinstance(value, type)}
    for provider in registry.providers():
        names.add(provider.options_type.__name__)
    return names


def _titles(node, path="$"):
    """Every (path, title) in a schema, and every (path, None) of a field without a title."""
    if isinstance(node, dict):
        if isinstance(node.get("title"), str):
            yield path, node["title"]
        for name, field in (node.get("properties") or {}).items():
            if isinstance(field, dict) and "title" not in field:
                yield f"{path}.properties.{name}", None
        for key, value in node.items():
            yield from _titles(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _titles(value, f"{path}[{index}]")


def assert_human_titles(schema: dict) -> None:
    titles = list(_titles(schema))
    assert len(titles) > 50, titles
    untitled = [path for path, title in titles if title is None]
    assert not untitled, f"fields without a title (the UI shows 'Field'): {untitled}"
    type_names = _type_names()
    named_by_type = [(path, title) for path, title in titles if title in type_names or TYPE_NAME.fullmatch(title)]
    assert not named_by_type, f"titles that are a Python type's name: {named_by_type}"
    optional = [(path, title) for path, title in titles if title.endswith("(Optional)")]
    assert not optional, optional


def _field_names(node, path="") -> set[str]:
    """The dotted names of every field under a schema node (through anyOf and items too)."""
    names: set[str] = set()
    if isinstance(node, dict):
        for name, field in (node.get("properties") or {}).items():
            names |= {f"{path}.{name}"} | _field_names(field, f"{path}.{name}")
        for key in ("anyOf", "items"):
            for child in node.get(key, []) if key == "anyOf" else [node.get(key)]:
                names |= _field_names(child, path)
    return names


def assert_provider_choice(request_schema: dict) -> None:
    """For each registered provider, a variant titled with its title whose source shows its own options."""
    variants = {variant["title"]: variant for variant in request_schema["anyOf"]}
    assert len(variants) == len(request_schema["anyOf"]), "two variants share a title: the UI could not tell them apart"
    assert request_schema["properties"]["provider"]["enum"] == list(registry.registered_names())
    for provider in registry.providers():
        variant = variants[provider.title]
        fields = variant["properties"]
        assert fields["provider"]["default"] == provider.name
        others = [name for name in registry.registered_names() if name != provider.name]
        assert fields["provider"].get("not", {"enum": []})["enum"] == others
        source = fields["source"]
        assert source["type"] == "object" and source["title"] == "Source VM"
        shown = {name for name, info in provider.options_type.model_fields.items() if not info.exclude}
        assert set(source["properties"]) == shown, (provider.name, sorted(source["properties"]))
        for name, option in source["properties"].items():
            info = provider.options_type.model_fields[name]
            assert option["title"], (provider.name, name)
            if info.description:
                assert option["description"].endswith(info.description), (provider.name, name, option)
        # The rest of the request is there too: where the disks go, how to convert them.
        assert {"export", "convert", "converter", "convert_options", "converter_config", "credentials_block"} <= set(fields)
        # Every shared field is drawn in the variant, a field named like a JSON Schema keyword (format) too.
        for name in fields.keys() - {"provider", "source"}:
            assert _field_names(fields[name]) == _field_names(request_schema["properties"][name]), (provider.name, name)
    local = variants[registry.get_provider("local").title]["properties"]["source"]
    assert "url_credentials" not in local["properties"], "a secret field reached the form"
    assert local["properties"]["source"]["description"].startswith("Required.")


def test_the_deployment_form_offers_each_provider_with_its_own_fields(stack):
    with client() as c:
        deployment = c.read_deployment_by_name(DEPLOYMENT)
    schema = deployment.parameter_openapi_schema
    request_schema = schema["properties"]["request"]
    assert_provider_choice(request_schema)
    assert_human_titles(request_schema)
    aws = next(v for v in request_schema["anyOf"] if v["properties"]["provider"]["default"] == "aws")
    assert aws["properties"]["source"]["properties"]["region"]["description"] == (
        "Required. AWS region of the source, e.g. eu-west-1."
    )


def test_the_plan_block_form_offers_each_provider_with_its_own_fields(stack):
    with client() as c:
        block_type = c.read_block_type_by_slug("hyperexport-migration-plan")
        block_schema = c.get_most_recent_block_schema_for_block_type(block_type.id)
    assert block_schema is not None
    vms = block_schema.fields["properties"]["vms"]
    assert vms["title"] == "VMs"
    assert_provider_choice(vms["items"])
    assert_human_titles(block_schema.fields)


def _missing_disk(tmp_path) -> dict:
    """A request that fails at once, in preflight (its disk does not exist): a run to retry in seconds."""
    return {
        "provider": "local",
        "source": {"source": str(tmp_path / "gone.raw")},
        "export": {"output_dir": str(tmp_path / "out")},
        "converter": "qemu-img",
    }


def _run_and_retry(parameters: dict, **create) -> tuple[str, str]:
    """The run's name after its first attempt and after the dashboard's Retry (both attempts fail)."""
    run = run_deployment(DEPLOYMENT, parameters=parameters, timeout=0, **create)
    first = wait_for_state(run.id, timeout=120)
    assert first.state.is_failed() and "gone.raw does not exist" in first.state.message, first.state.message
    with client() as c:
        c.set_flow_run_state(run.id, AwaitingRetry(), force=True)
    second = wait_for_state(run.id, timeout=120)
    assert second.state.is_failed() and second.run_count == 2, (second.state, second.run_count)
    return first.name, second.name


def test_a_run_keeps_the_name_it_was_created_with_also_after_a_retry(stack, tmp_path):
    # "web-rerun" has the shape of Prefect's adjective-animal names, but not their words.
    for typed in ("web-01 rerun after patch", "web-rerun"):
        first, second = _run_and_retry({"request": _missing_disk(tmp_path)}, flow_run_name=typed)
        assert first == second == typed


def test_a_run_prefect_named_gets_the_generated_name_once(stack, tmp_path):
    started = datetime.now(UTC).replace(microsecond=0)
    # No name (the server makes one up, "adjective-animal"), and the name the V2 UI's form fills in.
    for create in ({}, {"flow_run_name": "Sleek-Zebu"}):
        first, second = _run_and_retry({"request": _missing_disk(tmp_path)}, **create)
        match = re.fullmatch(r"migrate-local-gone\.raw-(\d{8}-\d{6})", first)
        assert match, (create, first)
        assert datetime.strptime(match[1], "%Y%m%d-%H%M%S").replace(tzinfo=UTC) >= started
        assert second == first, f"the retry renamed the run {first!r} to {second!r}"

