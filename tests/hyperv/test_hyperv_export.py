"""The export method (Export-VM into SHARE\\hyperexport\\RUN_ID), removal of its directory, and --cleanup-run."""

from __future__ import annotations

import pytest
from support.migrate import assert_identical

from hyperexport import migration
from hyperexport.errors import InsufficientSpaceError, InvalidInputError
from hyperexport.providers import lifecycle
from hyperexport.providers.registry import get_provider


def test_two_disks_migrate_through_export_and_the_directory_is_removed(hyperv, make_request, tmp_path):
    request = make_request(tmp_path / "out", vm="web01", export_method="export", share=hyperv.share)

    report = migration.run_migration(request, credentials=hyperv.login())

    assert report.success and report.export_method == "export"
    outputs = report.conversion.converted_files
    assert [p.name for p in outputs] == ["disk-0.qcow2", "disk-1.qcow2"]
    assert_identical(hyperv.boot_raw, "raw", outputs[0])
    assert_identical(hyperv.data_raw, "raw", outputs[1])
    exported = [s for s in hyperv.host.received if "Export-VM -VM $vm -Path $a.path" in s]
    assert len(exported) == 1, "Export-VM ran once"
    assert hyperv.run_dirs() == [], "the export directory was not removed"
    assert hyperv.checkpoints() == []


def test_export_out_of_space_says_so_and_removes_the_partial_export(hyperv, make_request, tmp_path):
    hyperv.host.export_space = 3 * 2**20  # the first VHDX is larger: Export-VM fails half-way through it
    request = make_request(tmp_path / "out", vm="web01", export_method="export", share=hyperv.share)

    with pytest.raises(InsufficientSpaceError) as raised:
        migration.run_migration(request, credentials=hyperv.login())

    message = str(raised.value)
    assert "ran out of space exporting VM 'web01'" in message and "not enough space on the disk" in message
    assert "Free space" in message and raised.value.field == "source.share"
    assert hyperv.run_dirs() == [], "the partial export was left on the share"


def test_a_kept_export_is_found_and_removed_by_its_run_id_alone(hyperv, make_request, tmp_path):
    provider, login = get_provider("hyperv"), hyperv.login()
    request = make_request(tmp_path / "out", vm="web01", export_method="export", share=hyperv.share,
                           export={"keep_cloud_artifacts": True})  # fmt: skip
    kept = migration.export_vm(migration.preflight(request), login, run_id="given-up-export")
    checkpointed = migration.export_vm(migration.preflight(make_request(tmp_path / "out2", vm="web01")), login, run_id="given-up-checkpoint")
    assert hyperv.run_dirs() == ["given-up-export"] and hyperv.checkpoints() == [("web01", "hyperexport-given-up-checkpoint")]

    removed = lifecycle.cleanup_run(provider, "given-up-export", provider.parse({"share": hyperv.share}), login)
    assert [(r.kind, r.id) for r in removed] == [("export-dir", f"{hyperv.share}\\hyperexport\\given-up-export")]
    assert hyperv.run_dirs() == [] and hyperv.checkpoints() == [("web01", "hyperexport-given-up-checkpoint")]

    removed = lifecycle.cleanup_run(provider, "given-up-checkpoint", provider.parse({}), login)
    assert [(r.kind, r.id, r.location) for r in removed] == [("checkpoint", "hyperexport-given-up-checkpoint", checkpointed.vm.vm_id)]
    assert hyperv.checkpoints() == []
    assert kept.created_resources and lifecycle.cleanup_run(provider, "given-up-export", provider.parse({}), login) == []


def test_a_run_directory_made_by_someone_else_is_neither_used_nor_removed(hyperv, make_request, tmp_path):
    planted = hyperv.exports / "hyperexport" / "planted-run"
    planted.mkdir(parents=True)
    (planted / "keep.txt").write_text("not hyperexport's")
    request = make_request(tmp_path / "out", vm="web01", export_method="export", share=hyperv.share)
    with pytest.raises(InvalidInputError) as raised:
        migration.export_vm(migration.preflight(request), hyperv.login(), run_id="planted-run")
    assert "exists before this run made it" in str(raised.value) and raised.value.field == "source.share"
    assert (planted / "keep.txt").read_text() == "not hyperexport's" and hyperv.checkpoints() == []
