"""Finding things in the vSphere inventory: a datacenter by name, a VM by name, inventory path, moid or UUID.

A name that matches no VM is answered with the closest names there are; one that matches several with their
inventory paths (any of which, or a moid, picks one).
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from ...errors import InvalidInputError, ResourceLimitError, SourceNotFoundError
from .credentials import pyvmomi
from .errors import translated

MOID = re.compile(r"^vm-\d+$")
#: a vCenter's inventory fits in far fewer pages and objects; more is a server gone wrong, not a bigger inventory
MAX_PAGES = 10_000
MAX_OBJECTS = 1_000_000
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def retrieve(
    content: Any, root: Any, kind: Any, properties: list[str], *, max_pages: int = MAX_PAGES, max_objects: int = MAX_OBJECTS,
) -> list[tuple[Any, dict[str, Any]]]:
    """Every object of ``kind`` under ``root`` with ``properties``, in one PropertyCollector call (paged, bounded)."""
    _, vmodl = pyvmomi()
    view = content.viewManager.CreateContainerView(root, [kind], True)
    try:
        spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[vmodl.query.PropertyCollector.ObjectSpec(
                obj=view, skip=True,
                selectSet=[vmodl.query.PropertyCollector.TraversalSpec(name="view", path="view", skip=False, type=type(view))],
            )],
            propSet=[vmodl.query.PropertyCollector.PropertySpec(type=kind, pathSet=properties, all=False)],
        )  # fmt: skip
        collector = content.propertyCollector
        found: list[tuple[Any, dict[str, Any]]] = []
        result = collector.RetrievePropertiesEx([spec], vmodl.query.PropertyCollector.RetrieveOptions())
        pages = 0
        while result is not None:
            pages += 1
            for item in result.objects:
                found.append((item.obj, {p.name: p.val for p in item.propSet}))
            if (result.token and pages >= max_pages) or len(found) > max_objects:
                if result.token:
                    collector.CancelRetrievePropertiesEx(result.token)
                raise ResourceLimitError(
                    f"vSphere's inventory answer did not end within {max_pages} pages and {max_objects} objects; "
                    "the vCenter misbehaves (restart its services, or limit the search with datacenter)"
                )
            result = collector.ContinueRetrievePropertiesEx(result.token) if result.token else None
        return found
    finally:
        view.Destroy()


def datacenters(content: Any) -> list[Any]:
    vim, _ = pyvmomi()
    return [obj for obj, _ in retrieve(content, content.rootFolder, vim.Datacenter, ["name"])]


def find_datacenter(content: Any, name: str | None) -> Any | None:
    """The datacenter called ``name`` (None: no restriction)."""
    if not name:
        return None
    vim, _ = pyvmomi()
    with translated(f"looking up datacenter {name!r}"):
        found = retrieve(content, content.rootFolder, vim.Datacenter, ["name"])
    for obj, props in found:
        if props.get("name") == name:
            return obj
    names = sorted(str(props.get("name")) for _, props in found)
    raise SourceNotFoundError(
        f"there is no datacenter {name!r} on this vCenter; its datacenters: {', '.join(names) or 'none'}",
        field="source.datacenter",
    )


def inventory_path(entity: Any) -> str:
    """``/DC/vm/folder/name`` of an inventory object (the root folder left out)."""
    names: list[str] = []
    node = entity
    for _ in range(64):  # the inventory is a tree: bounded, in case a server answers a loop
        parent = node.parent
        if parent is None:
            break
        names.append(node.name)
        node = parent
    return "/" + "/".join(reversed(names))


def find_vm(content: Any, reference: str, datacenter: Any | None) -> Any:
    """The one VM ``reference`` names: a moid (vm-123), an instance or BIOS UUID, an inventory path, or a name."""
    vim, vmodl = pyvmomi()
    root = datacenter or content.rootFolder
    where = f" in datacenter {datacenter.name}" if datacenter is not None else ""
    with translated(f"looking up VM {reference!r}"):
        if MOID.match(reference):
            vm = vim.VirtualMachine(reference, content.rootFolder._stub)
            try:
                vm.name  # noqa: B018 - reading a property is how vSphere says whether the object exists
            except vmodl.fault.ManagedObjectNotFound:
                raise SourceNotFoundError(f"there is no VM with managed object id {reference}", field="source.vm") from None
            return vm
        if UUID.match(reference):
            for instance_uuid in (True, False):
                vm = content.searchIndex.FindByUuid(datacenter, reference, True, instance_uuid)
                if vm is not None:
                    return vm
            raise SourceNotFoundError(f"no VM has the instance or BIOS UUID {reference}{where}", field="source.vm")
        if reference.startswith("/"):
            vm = content.searchIndex.FindByInventoryPath(reference.strip("/"))
            if isinstance(vm, vim.VirtualMachine):
                return vm
            raise SourceNotFoundError(
                f"no VM at inventory path {reference} (it is /datacenter/vm/folder.../name)", field="source.vm"
            )
        vms = retrieve(content, root, vim.VirtualMachine, ["name"])
    matches = [obj for obj, props in vms if props.get("name") == reference]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        names = sorted({str(props.get("name")) for _, props in vms})
        close = difflib.get_close_matches(reference, names, n=5, cutoff=0.6)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise SourceNotFoundError(f"there is no VM named {reference!r}{where}.{hint}", field="source.vm")
    with translated(f"listing the VMs named {reference!r}"):
        paths = sorted(f"{inventory_path(vm)} ({vm._moId})" for vm in matches)
    raise InvalidInputError(
        f"{len(matches)} VMs are named {reference!r}{where}: {'; '.join(paths)}. Give one by its inventory path or "
        "managed object id (or the datacenter)",
        field="source.vm",
    )
