"""Each failure gives its message, and whatever the run made is gone afterwards; what was there is untouched."""

from __future__ import annotations

import threading
import time
import traceback

import pytest
from support.gcp_compute import PROJECT, ZONE
from support.gcp_requests import key_secrets

from hyperexport import cancel
from hyperexport.errors import AccessDeniedError, CancelledError, HyperExportError, IntegrityError, SourceNotFoundError, TransferError
from hyperexport.migration import export_vm, preflight, run_migration
from hyperexport.providers.gcp import GcpLogin
from hyperexport.providers.gcp.errors import QuotaExceededError, WorkerFailedError


def _export_fails(gce, request, login, error_type) -> HyperExportError:
    before = gce.inventory()
    with pytest.raises(error_type) as raised:
        export_vm(preflight(request), login)
    gce.join_workers()
    assert gce.inventory() == before, "the failed export left something behind, or removed what was there"
    return raised.value


def test_script_failure_quotes_the_serial_console_and_leaves_nothing(gce, web01, login, make_request, tmp_path):
    gce.faults.script_fails = True

    error = _export_fails(gce, make_request(tmp_path / "out", instance="web01"), login, WorkerFailedError)

    message = str(error)
    assert "failed (failed:1)" in message
    assert "qemu-img: Could not open '/dev/disk/by-id/google-export-0': Permission denied" in message
    assert "hyperexport: failed with exit status 1" in message


def test_script_failure_with_keep_still_removes_the_worker(gce, web01, login, make_request, tmp_path):
    gce.faults.script_fails = True
    request = make_request(tmp_path / "out", instance="web01", export={"keep_cloud_artifacts": True})

    with pytest.raises(WorkerFailedError):
        export_vm(preflight(request), login)

    gce.join_workers()
    assert {kind for kind, _ in gce.labelled()} == {"snapshot"}, "keep kept more than the snapshots"


def test_worker_that_never_signals_times_out_and_is_deleted(gce, web01, login, make_request, tmp_path):
    gce.faults.never_signal = True
    request = make_request(tmp_path / "out", instance="web01", export={"export_timeout_seconds": 1})

    started = time.monotonic()
    error = _export_fails(gce, request, login, TransferError)

    assert "the export worker hx-" in str(error) and "did not finish within 1s" in str(error)
    assert time.monotonic() - started < 30


def test_operation_that_never_finishes_times_out(gce, web01, login, make_request, tmp_path):
    gce.faults.stuck = "createSnapshot"
    request = make_request(tmp_path / "out", instance="web01", export={"export_timeout_seconds": 0.5})

    error = _export_fails(gce, request, login, TransferError)

    assert "snapshotting disk web01 did not finish within" in str(error) and "export_timeout_seconds" in str(error)


def test_quota_exceeded_for_the_worker_names_the_quota(gce, web01, login, make_request, tmp_path):
    gce.faults.quota = "CPUS"

    error = _export_fails(gce, make_request(tmp_path / "out", instance="web01"), login, QuotaExceededError)

    assert "quota CPUS exceeded" in str(error) and "europe-west1" in str(error) and error.field == "source.machine_type"


def test_missing_permission_is_named(gce, web01, login, make_request, tmp_path):
    gce.faults.denied = {"compute.disks.createSnapshot"}

    error = _export_fails(gce, make_request(tmp_path / "out", instance="web01"), login, AccessDeniedError)

    assert "lacks the permission compute.disks.createSnapshot" in str(error)


@pytest.mark.parametrize(
    ("options", "field", "words"),
    [
        ({"instance": "web99"}, "source.instance", "instance web99 was not found in zone europe-west1-b"),
        ({"instance": "web01", "zone": "europe-west9-z"}, "source.zone", "zone europe-west9-z does not exist"),
        ({"instance": "web01", "project": "someone-elses"}, "source.project", "project someone-elses was not found"),
        ({"disk": "nodisk"}, "source.disk", "disk nodisk was not found"),
        ({"snapshot": "nosnap"}, "source.snapshot", "snapshot nosnap was not found"),
        ({"instance": "web01", "bucket": "no-such-bucket"}, "source.bucket", "bucket no-such-bucket does not exist"),
    ],
)
def test_not_found_names_what_is_missing(gce, web01, login, make_request, tmp_path, options, field, words):
    error = _export_fails(gce, make_request(tmp_path / "out", **options), login, SourceNotFoundError)

    assert words in str(error) and error.field == field


def test_run_failed_mid_download_is_cleaned_up(gce, web01, login, make_request, tmp_path):
    """The first object vanishes once its download has begun: a permanent failure, so nothing is kept."""
    before = gce.inventory()
    request = make_request(tmp_path / "out", instance="web01")
    bucket = gce.gcs.client(PROJECT).bucket("hx-exports")

    def vanish(current, total, name, index, files):
        for blob in bucket.list_blobs(prefix="hyperexport/"):
            blob.delete()

    request = request.model_copy(update={"export": request.export.model_copy(update={"progress_callback": vanish})})

    with pytest.raises(SourceNotFoundError, match="it was deleted since"):
        run_migration(request, credentials=login)

    assert gce.inventory() == before, "the run left something behind"


def test_zone_is_checked_before_anything_is_made(gce, web01, login, make_request, tmp_path):
    _export_fails(gce, make_request(tmp_path / "out", instance="web01", zone="europe-west9-z"), login, SourceNotFoundError)
    assert gce.count("POST", ".") == 0 and ZONE != "europe-west9-z"


def test_refused_key_is_named_as_such_and_never_shown(gce, web01, key_info, make_request, tmp_path):
    from google.oauth2 import service_account

    gce.faults.token_refused = True
    credentials = service_account.Credentials.from_service_account_info(
        key_info, scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    login = GcpLogin(credentials=credentials, project=PROJECT, compute_endpoint=gce.endpoint, storage_endpoint=gce.gcs.endpoint)

    error = _export_fails(gce, make_request(tmp_path / "out", instance="web01"), login, AccessDeniedError)

    assert "could not get a token" in str(error) and error.field == "credentials_block"
    shown = "".join(traceback.format_exception(error)) + repr(login) + login.model_dump_json()
    for secret in key_secrets(key_info):
        assert secret not in shown


def test_cancelled_run_still_removes_its_worker_disks_and_snapshots(gce, web01, login, make_request, tmp_path):
    gce.faults.never_signal = True
    before = gce.inventory()

    def cancel_once_the_worker_runs() -> None:
        deadline = time.monotonic() + 30
        while not any(kind == "instance" for kind, _ in gce.labelled()) and time.monotonic() < deadline:
            time.sleep(0.01)
        cancel.request_cancel()

    canceller = threading.Thread(target=cancel_once_the_worker_runs)
    canceller.start()
    try:
        with pytest.raises(CancelledError):
            export_vm(preflight(make_request(tmp_path / "out", instance="web01")), login)
    finally:
        canceller.join()
        cancel.reset()
    assert gce.inventory() == before


def test_object_that_is_not_what_the_worker_wrote_is_refused(gce, web01, login, make_request, tmp_path):
    gce.faults.object_replaced = True

    error = _export_fails(gce, make_request(tmp_path / "out", instance="web01"), login, IntegrityError)

    assert "Cloud Storage gives crc32c" in str(error) and "the worker wrote" in str(error)


@pytest.mark.parametrize("call", [r"POST zones/[^/]+/instances", r"POST zones/[^/]+/disks", r"POST zones/[^/]+/disks/[^/]+/createSnapshot"])
def test_insert_whose_answer_is_lost_is_still_rolled_back(gce, web01, login, make_request, tmp_path, call):
    gce.faults.answer_lost = call

    error = _export_fails(gce, make_request(tmp_path / "out", instance="web01"), login, TransferError)

    assert "server error (503)" in str(error)
    assert gce.faults.answer_lost is None, "the fault never fired"


@pytest.mark.parametrize("call", [r"POST zones/[^/]+/instances", r"POST zones/[^/]+/disks", r"POST zones/[^/]+/disks/[^/]+/createSnapshot"])
def test_409_for_the_runs_own_resource_is_adopted(gce, web01, login, make_request, tmp_path, call):
    """A retried insert whose first attempt went through: the resource is the run's own (its label), so it is used."""
    gce.faults.answered_conflict = call
    before = gce.inventory()

    result = export_vm(preflight(make_request(tmp_path / "out", instance="web01")), login)

    assert gce.faults.answered_conflict is None, "the fault never fired"
    assert [d.location.rsplit("/", 1)[-1] for d in result.disks] == ["web01.qcow2", "web01-data.qcow2"]
    gce.join_workers()
    assert {kind for kind, _ in gce.inventory() - before} <= {"snapshot", "object"}


def test_409_for_a_resource_not_of_the_run_stays_refused(gce, web01, login, make_request, tmp_path):
    from hyperexport.errors import InvalidInputError
    from hyperexport.providers.gcp.snapshots import resource_name

    gce.add_disk(resource_name("taken-run", "disk-0"), gce.files["web01"])
    before = gce.inventory()

    with pytest.raises(InvalidInputError, match="exists already") as raised:
        export_vm(preflight(make_request(tmp_path / "out", instance="web01")), login, run_id="taken-run")

    gce.join_workers()
    assert "creating the temporary disk hx-" in str(raised.value)
    assert gce.inventory() == before, "the failed export removed the disk it did not make, or left its own"
