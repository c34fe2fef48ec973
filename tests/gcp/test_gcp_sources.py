"""One persistent disk or one existing snapshot instead of an instance."""

from __future__ import annotations

from support.migrate import assert_identical

from hyperexport.migration import run_migration


def test_one_disk(gce, web01, login, data_raw, make_request, tmp_path):
    before = gce.inventory()

    report = run_migration(make_request(tmp_path / "out", disk="web01-data"), credentials=login)

    assert report.success
    [output] = report.conversion.converted_files
    assert_identical(data_raw, "raw", output)
    assert [c.path.rsplit("/", 2)[-2] for c in gce.calls if c.path.endswith("/createSnapshot")] == ["web01-data"]
    assert gce.inventory() == before


def test_an_existing_snapshot_is_exported_and_left_as_it_was(gce, web01, login, boot_raw, make_request, tmp_path):
    before, nightly = gce.inventory(), dict(gce.snapshots["web01-nightly"])

    report = run_migration(make_request(tmp_path / "out", snapshot="web01-nightly"), credentials=login)

    assert report.success
    [output] = report.conversion.converted_files
    assert_identical(boot_raw, "raw", output)
    assert gce.count("POST", "/createSnapshot$") == 0, "an existing snapshot was snapshotted again"
    assert gce.snapshots["web01-nightly"] == nightly and gce.inventory() == before


def test_one_disk_as_raw(gce, web01, login, base_raw, make_request, tmp_path):
    """A raw object streams the disk as it is (a 64 MiB image: the fake's disk claims 1 GB, its smallest size)."""
    gce.add_disk("small01", base_raw)
    before = gce.inventory()

    report = run_migration(make_request(tmp_path / "out", disk="small01", disk_format="raw"), credentials=login)

    assert report.success
    [output] = report.conversion.converted_files
    assert_identical(base_raw, "raw", output)
    worker = next(c.body for c in gce.calls if c.method == "POST" and c.path.endswith("/instances"))
    plan = next(i["value"] for i in worker["metadata"]["items"] if i["key"] == "hyperexport-exports")
    assert '"format": "raw"' in plan and "small01.raw" in plan
    assert gce.inventory() == before
