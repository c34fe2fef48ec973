"""A VM that already had snapshots: its disks are chains (a base and deltas), and the base alone is stale.

The chain is laid as ESXi lays it as far as qemu-img can make one: the base as a flat extent with its
descriptor, the delta a descriptor of its own naming the base as its parent, with its grains in a separate
extent file. (qemu reads ESXi's vmfsSparse and seSparse deltas but cannot write either.)
"""

from __future__ import annotations

import subprocess

import pytest

from support.vsphere_inventory import MiB, snapshot_names
from support.vsphere_inventory import DATASTORE, Disk, task

from hyperexport.errors import InvalidInputError
from hyperexport.migration import run_migration


def _lay_delta(made, index: int) -> str:
    """A delta over disk ``index``'s base with one block written after the snapshot; the backing points at it."""
    from pyVmomi import vim

    base = made.descriptors[index]
    delta = base.with_name(base.stem + "-000001.vmdk")
    subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=twoGbMaxExtentSparse", "-b", base.name,
                    "-F", "vmdk", str(delta)], check=True, cwd=base.parent)  # fmt: skip
    subprocess.run(["qemu-io", "-f", "vmdk", "-c", f"write -P 0x5a {MiB} 64k", str(delta)], check=True, capture_output=True)
    # ESXi names a delta's grains file -delta.vmdk: rename qemu's -s001.vmdk so (its descriptor's extent line too).
    grains = delta.with_name(delta.stem + "-s001.vmdk")
    grains.rename(delta.with_name(delta.stem + "-delta.vmdk"))
    delta.write_text(delta.read_text().replace(f'"{grains.name}"', f'"{delta.stem}-delta.vmdk"'))
    delta.with_name(delta.stem + "-flat.vmdk").touch()  # vcsim's disk manager insists on a -flat file for every disk
    disk = next(d for d in made.vm.config.hardware.device if d.key == made.disk_keys[index])
    parent = disk.backing
    disk.backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
        fileName=f"[{DATASTORE}] {made.name}/{delta.name}", diskMode="persistent", parent=parent
    )
    task(made.vm.ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="edit", device=disk)])))
    return delta.name


def test_vm_with_a_snapshot_chain_is_refused_never_exported_stale(login, make_vm_in, root_raw, data_raw, make_request,
                                                                  tmp_path):  # fmt: skip
    made = make_vm_in([Disk(root_raw, 0, 0, boot=True), Disk(data_raw, 0, 1)])
    task(made.vm.CreateSnapshot_Task(name="before-upgrade", description="a person's", memory=False, quiesce=False))
    _lay_delta(made, 1)
    fresh = subprocess.run(["qemu-img", "compare", "-f", "vmdk", "-F", "raw", str(made.descriptors[1].with_name(
        made.descriptors[1].stem + "-000001.vmdk")), str(data_raw)], capture_output=True, text=True)  # fmt: skip
    assert fresh.returncode == 1, "the delta holds a write the base does not: the base alone is stale"

    with pytest.raises(InvalidInputError) as raised:
        run_migration(make_request(tmp_path / "out", vm=made.name), credentials=login)

    message = str(raised.value)
    assert raised.value.field == "source.vm"
    assert (f"VM /DC0/vm/{made.name} already has snapshots: disk-1000-1 is a chain of 2 files (a base disk and 1 "
            "delta(s)), and its base alone would lose every write") in message
    assert "Delete the VM's snapshots in vSphere" in message
    assert snapshot_names(made) == ["before-upgrade"], "only the person's snapshot is there"
    assert not list((tmp_path / "out").glob("*.qcow2")) and not list((tmp_path / "out").glob("*.raw"))


def test_a_retry_removes_the_snapshot_an_earlier_attempt_of_the_run_left(login, web01, make_request, tmp_path):
    from hyperexport import migration

    run_id = "retried-run-1"
    task(web01.vm.CreateSnapshot_Task(name=f"hyperexport-{run_id}", description="left by a timed-out attempt",
                                      memory=False, quiesce=False))  # fmt: skip
    task(web01.vm.CreateSnapshot_Task(name="before-upgrade", description="a person's", memory=False, quiesce=False))
    request = make_request(tmp_path / "out", vm=web01.name)
    export = migration.export_vm(migration.preflight(request), login, run_id=run_id)
    assert sorted(snapshot_names(web01)) == ["before-upgrade", f"hyperexport-{run_id}"], "one of the run's: the new one"
    assert [r.kind for r in export.created_resources] == ["snapshot"]
    assert export.metadata["snapshot"] == export.created_resources[0].id
    migration.cleanup(migration.preflight(request), export, login)
    assert snapshot_names(web01) == ["before-upgrade"], "the left-over and the new snapshot are gone, the person's kept"
