"""Preflight resolves a frozen plan that every step takes: the provider's options are parsed and checked once,
and the conversion settings reach the converter by the plan alone (the manifest only records them)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError as PydanticValidationError

from flows.migrate_vm import migrate_vm
from hyperexport import migration
from hyperexport.converters.base import output_path
from hyperexport.manifest import ManifestPipeline, PipelineStage, load_manifest, write_manifest
from hyperexport.providers.registry import get_provider
from hyperexport.qemu import info
from support.migrate import assert_identical, local_request


@pytest.fixture
def counted(monkeypatch):
    """How often the local provider parses and checks options in this test."""
    provider = get_provider("local")
    calls = {"parse": 0, "check": 0}
    parse, check = provider.parse, provider.check

    def counting_parse(raw):
        calls["parse"] += 1
        return parse(raw)

    def counting_check(options, export):
        calls["check"] += 1
        return check(options, export)

    monkeypatch.setattr(provider, "parse", counting_parse)
    monkeypatch.setattr(provider, "check", counting_check)
    return calls


def test_the_plan_is_frozen_and_independent_of_the_request_it_came_from(base_raw, second_raw, tmp_path):
    request = local_request(base_raw, tmp_path / "out", converter="qemu-img")
    plan = migration.preflight(request)
    with pytest.raises(PydanticValidationError):
        plan.options = None  # type: ignore[misc]
    request.source["source"] = str(second_raw)  # the caller changes its request after preflight
    export = migration.export_vm(plan)
    assert [Path(d.location) for d in export.disks] == [base_raw]


def test_run_migration_parses_and_checks_the_source_once(counted, base_raw, tmp_path):
    report = migration.run_migration(local_request(base_raw, tmp_path / "out", converter="qemu-img"))
    assert report.success
    assert counted == {"parse": 1, "check": 1}
    assert_identical(base_raw, "raw", output_path(tmp_path / "out", report.disks[0].id, "qcow2"))


def test_the_flow_checks_the_source_once(counted, prefect_server, base_raw, tmp_path):
    report = migrate_vm(local_request(base_raw, tmp_path / "out", converter="qemu-img"))
    assert report.success
    # parse: once in preflight, once more for the run's name (it is made from the raw parameters); no task parses
    assert counted == {"parse": 2, "check": 1}
    assert_identical(base_raw, "raw", output_path(tmp_path / "out", report.disks[0].id, "qcow2"))


def test_conversion_follows_the_plan_not_what_the_manifest_says(base_raw, tmp_path):
    """A manifest whose pipeline asks for guest fixes, a dry run and a vmdk output is converted as the plan
    says (qcow2, written, no guest fix): the manifest's settings are a record, never a second route."""
    source = tmp_path / "vm" / "disk.raw"
    source.parent.mkdir()
    shutil.copyfile(base_raw, source)
    request = local_request(source, tmp_path / "first", converter="qemu-img")
    first = migration.run_migration(request.model_copy(update={"convert": False}))
    manifest = load_manifest(first.manifest_path)
    lying = manifest.model_copy(update={
        "pipeline": ManifestPipeline(inspect=PipelineStage(enabled=True), fix=PipelineStage(enabled=True)),
        "options": {"dry_run": True, "verbose": 2},
        "output": manifest.output.model_copy(update={"format": "vmdk"}),
    })
    lying_path = write_manifest(lying, source.parent)  # beside its disk, as a manifest must be
    assert json.loads(lying_path.read_text())["options"]["dry_run"] is True

    plan = migration.conversion_plan(local_request(base_raw, tmp_path / "second", converter="hyper2kvm"))
    working, disks = migration.adopt_manifest(lying_path, plan)
    conversion = migration.convert(plan, working)
    assert not conversion.guest_modified and conversion.converted_files
    output = conversion.converted_files[0]
    assert output.suffix == ".qcow2" and info(output, "qcow2").format == "qcow2"
    assert migration.validate(plan, disks, conversion).passed
    assert_identical(base_raw, "raw", output)

