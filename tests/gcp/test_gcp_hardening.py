"""What the source or the request names is checked before it is used; the worker leaves nothing behind."""

from __future__ import annotations

import pytest

from support.gcp_compute import PROJECT, ZONE

from hyperexport.errors import InvalidInputError, TransferError
from hyperexport.migration import export_vm, preflight


def test_worker_attaches_its_temporary_disks_auto_deleted(gce, web01, login, make_request, tmp_path):
    """Compute Engine deletes them with the worker at max_run_duration, should hyperexport die meanwhile."""
    export_vm(preflight(make_request(tmp_path / "out", instance="web01")), login)

    [insert] = [c for c in gce.calls if c.method == "POST" and c.path.endswith(f"/zones/{ZONE}/instances")]
    disks = insert.body["disks"]
    assert len(disks) == 3 and all(d["autoDelete"] for d in disks)
    assert insert.body["scheduling"]["instanceTerminationAction"] == "DELETE"


@pytest.mark.parametrize(
    "elsewhere",
    [f"projects/other-project/zones/{ZONE}/disks/web01-data", f"projects/{PROJECT}/regions/europe-west1/disks/web01-data"],
)
def test_disk_of_another_project_or_region_is_refused(gce, web01, login, make_request, tmp_path, elsewhere):
    attached = next(d for d in gce.instances["web01"]["disks"] if d["deviceName"] == "web01-data")
    attached["source"] = f"{gce.endpoint}/compute/v1/{elsewhere}"
    before = gce.inventory()

    with pytest.raises(InvalidInputError) as raised:
        export_vm(preflight(make_request(tmp_path / "out", instance="web01")), login)

    message = str(raised.value)
    assert elsewhere in message and f"projects/{PROJECT}/zones/{ZONE}/disks/" in message and "copy it" in message
    assert gce.count("POST", ".") == 0 and gce.inventory() == before


@pytest.mark.parametrize("image", ["projects/someone-elses/global/images/family/debian-12",
                                   "projects/evil-images/global/images/backdoored"])  # fmt: skip
def test_worker_image_of_an_untrusted_project_is_refused(gce, web01, login, make_request, tmp_path, image):
    with pytest.raises(InvalidInputError) as raised:
        export_vm(preflight(make_request(tmp_path / "out", instance="web01", worker_image=image)), login)

    assert raised.value.field == "source.worker_image" and "debian-cloud" in str(raised.value)
    assert gce.count("POST", ".") == 0


def test_worker_image_of_the_runs_own_project_is_used(gce, web01, login, make_request, tmp_path):
    image = f"projects/{PROJECT}/global/images/family/hardened-debian"

    export_vm(preflight(make_request(tmp_path / "out", instance="web01", worker_image=image)), login)

    assert gce.count("GET", f"projects/{PROJECT}/global/images/family/hardened-debian$") == 1


def test_endless_listing_is_cut_off(gce, web01, login, tmp_path, monkeypatch):
    from hyperexport.providers.gcp import pagers

    monkeypatch.setattr(pagers, "MAX_ITEMS", 3)
    for i in range(4):
        gce.add_snapshot(f"left-{i}", "web01", labels={"hyperexport-run-id": "many-run"})
    from hyperexport.providers.gcp.cleanup import labelled
    from hyperexport.providers.gcp.clients import make_context

    ctx = make_context(PROJECT, ZONE, login)
    with pytest.raises(TransferError, match="more than 3"):
        labelled(ctx, "snapshot", "many-run")
    assert labelled(ctx, "snapshot", "other-run") == []


def test_endless_object_listing_is_cut_off(gce, login, monkeypatch):
    from hyperexport.providers.gcp import pagers
    from hyperexport.providers.gcp.clients import make_context
    from hyperexport.providers.gcp.gcs import list_names

    monkeypatch.setattr(pagers, "MAX_ITEMS", 3)
    bucket = gce.gcs.client(PROJECT).bucket("hx-exports")
    for i in range(4):
        bucket.blob(f"hyperexport/many-run/part-{i}").upload_from_string(b"x")

    ctx = make_context(PROJECT, ZONE, login)
    with pytest.raises(TransferError, match="listing gs://hx-exports/hyperexport/many-run/ gave more than 3"):
        list_names(ctx, "hx-exports", "hyperexport/many-run/")
    assert list_names(ctx, "hx-exports", "hyperexport/many-run/part-1") == ["hyperexport/many-run/part-1"]
