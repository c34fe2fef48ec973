"""What the source or the request names is checked before it is used; the worker leaves nothing behind."""

from __future__ import annotations

from support.gcp_compute import ZONE

from hyperexport.migration import export_vm


def test_worker_attaches_its_temporary_disks_auto_deleted(gce, web01, login, make_request, tmp_path):
    """Compute Engine deletes them with the worker at max_run_duration, should hyperexport die meanwhile."""
    export_vm(make_request(tmp_path / "out", instance="web01"), login)

    [insert] = [c for c in gce.calls if c.method == "POST" and c.path.endswith(f"/zones/{ZONE}/instances")]
    disks = insert.body["disks"]
    assert len(disks) == 3 and all(d["autoDelete"] for d in disks)
    assert insert.body["scheduling"]["instanceTerminationAction"] == "DELETE"

