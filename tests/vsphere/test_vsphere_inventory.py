"""The inventory read from vcsim's PropertyCollector, bounded in objects (vcsim answers in one page, so the
bound on pages is not reached here)."""

from __future__ import annotations

import pytest
from support.vsphere_inventory import Disk

from hyperexport.errors import ResourceLimitError
from hyperexport.providers.vsphere.inventory import retrieve


def test_an_answer_past_the_object_bound_is_cut_off(service_instance, make_vm_in, data_raw):
    from pyVmomi import vim

    made = [make_vm_in([Disk(data_raw)]) for _ in range(3)]
    content = service_instance.RetrieveContent()
    everything = retrieve(content, content.rootFolder, vim.VirtualMachine, ["name"])
    assert {m.name for m in made} <= {p["name"] for _, p in everything}

    with pytest.raises(ResourceLimitError) as raised:
        retrieve(content, content.rootFolder, vim.VirtualMachine, ["name"], max_objects=2)
    assert "vSphere's inventory answer did not end within 10000 pages and 2 objects" in str(raised.value)
