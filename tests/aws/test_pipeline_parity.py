"""A migration that fails after the export behaves the same through the engine's serial runner
(migration.run_migration) and through the migrate-vm flow: one pipeline, one keep-or-clean policy."""

from __future__ import annotations

import logging

import pytest

from hyperexport import migration
from hyperexport.errors import AccessDeniedError, PermanentError, TransferError
from hyperexport.providers.registry import get_provider


def _through_engine(request) -> tuple[BaseException, list[str]]:
    lines: list[str] = []
    with pytest.raises(Exception) as raised:
        migration.run_migration(request, log=lines.append)
    return raised.value, lines


def _through_flow(request, caplog) -> tuple[BaseException, list[str]]:
    from flows.migrate_vm import migrate_vm

    with caplog.at_level(logging.WARNING):
        state = migrate_vm(request, return_state=True)
    assert state.is_failed(), state
    with pytest.raises(Exception) as raised:
        state.result()
    return raised.value, [record.getMessage() for record in caplog.records]


@pytest.mark.parametrize("runner", ["engine", "flow"])
def test_permanent_download_failure_removes_what_the_export_created(runner, prefect_server, aws, light01, make_request,
                                                                    tmp_path, caplog):
    before = aws.inventory()
    aws.fail("ebs", "GetSnapshotBlock", "AccessDeniedException", "not authorized", times=None)
    request = make_request(tmp_path / "out", instance=light01.instance_id)

    error, _ = _through_engine(request) if runner == "engine" else _through_flow(request, caplog)

    assert isinstance(error, AccessDeniedError) and isinstance(error, PermanentError), repr(error)
    assert aws.tagged() == {"snapshots": [], "images": []}
    assert aws.inventory() == before


@pytest.mark.parametrize("runner", ["engine", "flow"])
def test_transient_download_failure_keeps_the_snapshots_for_a_retry(runner, prefect_server, aws, light01, make_request,
                                                                     tmp_path, caplog):
    aws.fail("ebs", "GetSnapshotBlock", "InternalServerException", "try again", times=None)
    request = make_request(tmp_path / "out", instance=light01.instance_id)

    error, lines = _through_engine(request) if runner == "engine" else _through_flow(request, caplog)

    assert isinstance(error, TransferError), repr(error)
    kept = sorted(aws.tagged()["snapshots"])
    assert kept, "the snapshots are kept so that a retry resumes the download"
    message = next(line for line in lines if line.startswith(f"kept {len(kept)} resource(s)"))
    run_id = message.split("--cleanup-run ")[1].split()[0]
    assert kept == sorted(aws.tagged(run_id)["snapshots"]) and "--opt region=..." in message
    aws.faults.clear()
    removed = migration.cleanup_run("aws", {"region": request.source["region"]}, run_id)
    assert sorted(r.id for r in removed) == kept and aws.tagged() == {"snapshots": [], "images": []}
    assert get_provider("aws").cleanup_options[0] == "region"
