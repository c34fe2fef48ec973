"""The vsphere provider against the conformance suite, on vcsim."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from support.conformance import Harness, ProviderConformance
from support.vsphere_inventory import Disk

from hyperexport.models import ExportOptions
from hyperexport.providers.registry import get_provider


def run_snapshots(service_instance) -> set[tuple[str, str]]:
    """Every snapshot at the source that a run made (its name starts with hyperexport-)."""
    from pyVmomi import vim

    content = service_instance.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    found = set()
    try:
        for vm in view.view:
            todo = list(vm.snapshot.rootSnapshotList) if vm.snapshot else []
            while todo:
                node = todo.pop()
                todo.extend(node.childSnapshotList or [])
                if node.name.startswith("hyperexport-"):
                    found.add(("snapshot", node.snapshot._moId))
    finally:
        view.Destroy()
    return found


@contextmanager
def _descriptor_gone(path):
    """The disk's descriptor missing from the datastore: the export fails after the snapshot exists."""
    hidden = path.with_name(path.name + ".hidden")
    path.rename(hidden)
    try:
        yield
    finally:
        hidden.rename(path)


class TestVsphereConformance(ProviderConformance):
    provider_name = "vsphere"

    @pytest.fixture
    def harness(self, vcsim, login, service_instance, make_vm_in, data_raw) -> Harness:
        vm = make_vm_in([Disk(data_raw, 0, 0, boot=True)])
        return Harness(
            provider=get_provider("vsphere"),
            good_source={"vm": vm.name, "poll_seconds": 0.05},
            bad_sources=[
                ({}, "source.vm"),
                ({"vm": "  "}, "source.vm"),
                ({"vm": vm.name, "datacenter": "DC0/vm"}, "source.datacenter"),
            ],
            export_options=lambda path: ExportOptions(output_dir=path / "out"),
            credentials=login,
            resources_at_source=lambda: run_snapshots(service_instance),
            failing_export=lambda: _descriptor_gone(vm.descriptors[0]),
            sdk_modules=("pyVmomi", "pyVim"),
        )
