"""The provider conformance suite, in the manner of Prefect's BlockStandardTestSuite.

Each provider's tests subclass ``ProviderConformance`` and give a ``harness`` fixture: a real source to work
against (moto for aws, a local server for the toy provider, files for local), good and bad options, and a
way to see what exists at the source. tests/test_provider_conformance.py checks that every registered
provider has such a subclass.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from hyperexport.errors import HyperExportError, InvalidInputError, PermanentError
from hyperexport.models import ExportOptions, Resource
from hyperexport.providers import lifecycle
from hyperexport.providers.contract import Provider
from hyperexport.transfer.defaults import TransferDefaults

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Harness:
    provider: Provider[Any, Any]
    good_source: dict[str, Any]
    bad_sources: list[tuple[dict[str, Any], str]]  # options, the dotted field the error must name
    export_options: Callable[[Path], ExportOptions]
    credentials: Any = None
    secret_source: tuple[dict[str, Any], list[str]] | None = None  # options holding secrets, and the secrets
    # Every resource at the source that carries a run's tag or id: (kind, id) pairs.
    resources_at_source: Callable[[], set[tuple[str, str]]] = lambda: set()
    # A context in which an export fails after it created something (None: the provider creates nothing).
    failing_export: Callable[[], AbstractContextManager[Any]] | None = None
    sdk_modules: tuple[str, ...] = ()  # top-level modules of the provider's SDK
    pythonpath: list[str] = field(default_factory=list)  # where a plugin provider is installed


def _ids(resources: list[Resource]) -> set[tuple[str, str]]:
    return {(r.kind, r.id) for r in resources}


class ProviderConformance:
    """What every provider must do. Subclasses set ``provider_name`` and define the ``harness`` fixture."""

    provider_name: ClassVar[str]

    @pytest.fixture
    def harness(self) -> Iterator[Harness]:
        raise NotImplementedError

    def test_shape(self, harness: Harness) -> None:
        provider = harness.provider
        assert isinstance(provider, Provider) and provider.name == self.provider_name
        assert provider.title and provider.title != provider.name
        assert issubclass(provider.options_type, BaseModel)
        fields = provider.options_type.model_fields
        for flag in provider.flags:
            assert flag.option in fields, f"{flag.flag} sets {flag.option!r}, which {provider.options_type.__name__} lacks"
        for option in (*provider.label_options, *provider.cleanup_options):
            assert option in fields, option
        assert provider.recommended_limit >= 1
        assert isinstance(provider.transfer, TransferDefaults)
        assert provider.credentials_type is None or isinstance(provider.credentials_type, type)
        for name, spec in fields.items():
            assert spec.description, f"option {name!r} has no description (the UI form and --help show it)"
        if provider.extra is not None:
            extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
            assert provider.extra in extras or harness.pythonpath, f"no extra {provider.extra!r} in pyproject.toml"

    def test_bad_options_name_their_field(self, harness: Harness, tmp_path: Path) -> None:
        for source, field_name in harness.bad_sources:
            with pytest.raises(PermanentError) as raised:  # before any work: retrying cannot help
                harness.provider.check(harness.provider.parse(source), harness.export_options(tmp_path))
            assert raised.value.field == field_name, (source, raised.value.field, str(raised.value))
            assert str(raised.value), source

    def test_unknown_option_is_refused(self, harness: Harness) -> None:
        with pytest.raises(InvalidInputError) as raised:
            harness.provider.parse({**harness.good_source, "no_such_option": "1"})
        assert "no_such_option" in str(raised.value) and raised.value.field == "source.no_such_option"

    def test_describe_and_label_never_show_a_secret(self, harness: Harness) -> None:
        if harness.secret_source is None:
            options = harness.provider.parse(harness.good_source)
            secret_fields = [n for n, f in type(options).model_fields.items() if "Secret" in str(f.annotation)]
            assert secret_fields == [], f"options hold secrets {secret_fields} but the harness names none"
            return
        source, secrets = harness.secret_source
        options = harness.provider.parse(source)
        shown = [harness.provider.describe(options), harness.provider.label(options), repr(options),
                 options.model_dump_json()]
        for secret in secrets:
            for text in shown:
                assert secret not in text, f"{secret!r} shown in {text!r}"

    def test_export_records_what_it_creates_and_cleanup_removes_exactly_that(self, harness: Harness, tmp_path: Path) -> None:
        provider, options = harness.provider, harness.provider.parse(harness.good_source)
        export_options = harness.export_options(tmp_path).model_copy(update={"keep_cloud_artifacts": True})
        before = harness.resources_at_source()
        result = lifecycle.export(provider, options, export_options, harness.credentials, run_id="conformance-run-1")
        assert result.run_id == "conformance-run-1" and result.provider == provider.name and result.disks
        created = harness.resources_at_source() - before
        assert _ids(result.created_resources) == created, "the ledger is not what the export created"
        if created:
            assert _ids(provider.run_resources("conformance-run-1", options, harness.credentials)) == created
        removed = lifecycle.cleanup(provider, result, options, harness.credentials)
        assert _ids(removed) == created
        assert harness.resources_at_source() == before

    def test_failed_export_is_rolled_back(self, harness: Harness, tmp_path: Path) -> None:
        provider, options = harness.provider, harness.provider.parse(harness.good_source)
        before = harness.resources_at_source()
        failing = harness.failing_export() if harness.failing_export else nullcontext()
        with failing:
            try:
                lifecycle.export(provider, options, harness.export_options(tmp_path), harness.credentials, run_id="conformance-run-2")
            except HyperExportError:
                pass
            else:
                assert harness.failing_export is None, "the export did not fail in the harness's failing context"
        assert harness.resources_at_source() == before, "a failed export left resources behind"

    def test_cleanup_run_finds_and_removes_only_that_runs_resources(self, harness: Harness, tmp_path: Path) -> None:
        provider, options = harness.provider, harness.provider.parse(harness.good_source)
        keep = harness.export_options(tmp_path).model_copy(update={"keep_cloud_artifacts": True})
        before = harness.resources_at_source()
        given_up = lifecycle.export(provider, options, keep, harness.credentials, run_id="conformance-given-up")
        other = lifecycle.export(provider, options, keep, harness.credentials, run_id="conformance-other")
        removed = lifecycle.cleanup_run(provider, "conformance-given-up", options, harness.credentials)
        assert _ids(removed) == _ids(given_up.created_resources)
        assert harness.resources_at_source() == before | _ids(other.created_resources)
        lifecycle.cleanup(provider, other, options, harness.credentials)
        assert harness.resources_at_source() == before

    def test_engine_imports_without_the_sdk(self, harness: Harness) -> None:
        """With the SDK missing, the engine, the CLI and the provider's package still import; using the provider
        says which extra to install."""
        blocked = list(harness.sdk_modules)
        script = textwrap.dedent(f"""
            import sys
            class Block:
                def find_spec(self, name, path=None, target=None):
                    if name.split(".")[0] in {blocked!r}:
                        raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            sys.meta_path.insert(0, Block())
            import hyperexport.cli, hyperexport.migration
            from hyperexport.providers.registry import get_provider
            provider = get_provider({self.provider_name!r})
            from hyperexport.errors import InvalidInputError
            from hyperexport.models import ExportOptions
            try:
                provider.export(__import__("hyperexport.providers.session", fromlist=["x"]).ExportSession(run_id="r"),
                                provider.parse({harness.good_source!r}), ExportOptions(output_dir="/nonexistent-out"))
            except InvalidInputError as error:
                print("REFUSED", error)
            except Exception as error:
                print("OTHER", type(error).__name__, error)
            else:
                print("EXPORTED")
        """)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([*harness.pythonpath, os.environ.get("PYTHONPATH", "")])}
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env, cwd=REPO)
        assert proc.returncode == 0, proc.stderr[-3000:]
        if blocked:
            assert f"pip install 'hyperexport[{harness.provider.extra}]'" in proc.stdout, proc.stdout + proc.stderr[-2000:]
