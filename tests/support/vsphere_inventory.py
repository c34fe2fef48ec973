"""VMs for the vsphere tests, made in vcsim through pyVmomi: disks whose backing points at real images laid in
the datastore's directory (flat VMDK and descriptor, made by qemu-img), NICs on a standard and a distributed
port group, firmware, boot order and CBT as the test asks."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MiB = 2**20

DATASTORE = "LocalDS_0"


@dataclass
class Disk:
    image: Path  # the raw image whose content the disk holds
    controller: int = 0  # SCSI bus number
    unit: int = 0
    boot: bool = False


@dataclass
class MadeVm:
    vm: Any
    name: str
    moid: str
    folder: Path  # the VM's directory in the datastore
    disk_keys: list[int] = field(default_factory=list)  # in the order of the Disk list given
    descriptors: list[Path] = field(default_factory=list)

    @property
    def extents(self) -> list[Path]:
        return [d.with_name(d.stem + "-flat.vmdk") for d in self.descriptors]


def task(t: Any) -> Any:
    from pyVim.task import WaitForTask

    WaitForTask(t)
    return t.info.result


def find(content: Any, kind: Any, name: str) -> Any:
    view = content.viewManager.CreateContainerView(content.rootFolder, [kind], True)
    try:
        return next(o for o in view.view if o.name == name)
    finally:
        view.Destroy()


def datastore_dir(content: Any) -> Path:
    from pyVmomi import vim

    return Path(find(content, vim.Datastore, DATASTORE).info.url)


def lay_flat_vmdk(image: Path, descriptor: Path) -> Path:
    """``image`` as a flat VMDK (descriptor + ``-flat.vmdk``), as a thick or thin disk on a datastore."""
    descriptor.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "vmdk", "-o", "subformat=monolithicFlat",
                    str(image), str(descriptor)], check=True)  # fmt: skip
    return descriptor


def make_vm(
    si: Any, name: str, disks: list[Disk], *, folder: str = "vm", efi: bool = True, secure_boot: bool = True,
    cpus: int = 2, memory_mb: int = 4096, guest_id: str = "debian11_64Guest", cbt: bool = False,
    macs: tuple[str, ...] = ("00:50:56:aa:bb:01", "00:50:56:aa:bb:02"), power_on: bool = True,
) -> MadeVm:
    from pyVmomi import vim

    content = si.RetrieveContent()
    datacenter = find(content, vim.Datacenter, "DC0")
    host = find(content, vim.HostSystem, "DC0_H0")
    vm_folder = datacenter.vmFolder
    if folder != "vm":
        vm_folder = next((f for f in vm_folder.childEntity if f.name == folder), None) or vm_folder.CreateFolder(folder)
    directory = datastore_dir(content) / name
    descriptors = [lay_flat_vmdk(d.image, directory / f"{name}-{i}.vmdk") for i, d in enumerate(disks)]
    device_spec = vim.vm.device.VirtualDeviceSpec
    changes = []
    for bus in sorted({d.controller for d in disks}):
        controller = vim.vm.device.ParaVirtualSCSIController(key=1000 + bus, busNumber=bus, sharedBus="noSharing")
        changes.append(device_spec(operation="add", device=controller))
    for i, (disk, descriptor) in enumerate(zip(disks, descriptors)):
        backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
            fileName=f"[{DATASTORE}] {name}/{descriptor.name}", diskMode="persistent", thinProvisioned=True
        )
        device = vim.vm.device.VirtualDisk(
            key=-(100 + i), controllerKey=1000 + disk.controller, unitNumber=disk.unit, backing=backing,
            capacityInBytes=disk.image.stat().st_size,
        )  # fmt: skip
        changes.append(device_spec(operation="add", device=device))
    networks = {n.name: n for n in datacenter.network}
    portgroup = networks["DC0_DVPG0"]
    for i, mac in enumerate(macs):
        if i == 0:
            backing = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName="VM Network", network=networks["VM Network"])
        else:
            backing = vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(
                port=vim.dvs.PortConnection(portgroupKey=portgroup.key, switchUuid=portgroup.config.distributedVirtualSwitch.uuid)
            )
        nic = vim.vm.device.VirtualVmxnet3(key=-(200 + i), backing=backing, addressType="manual", macAddress=mac)
        changes.append(device_spec(operation="add", device=nic))
    spec = vim.vm.ConfigSpec(
        name=name, numCPUs=cpus, memoryMB=memory_mb, guestId=guest_id, firmware="efi" if efi else "bios",
        files=vim.vm.FileInfo(vmPathName=f"[{DATASTORE}] {name}"), deviceChange=changes, changeTrackingEnabled=cbt,
        bootOptions=vim.vm.BootOptions(efiSecureBootEnabled=secure_boot),
    )  # fmt: skip
    vm = task(vm_folder.CreateVM_Task(config=spec, pool=host.parent.resourcePool, host=host))
    keys_by_file = {d.backing.fileName: d.key for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)}
    keys = [keys_by_file[f"[{DATASTORE}] {name}/{p.name}"] for p in descriptors]
    boot = [k for k, d in zip(keys, disks) if d.boot]
    if boot:
        task(vm.ReconfigVM_Task(vim.vm.ConfigSpec(bootOptions=vim.vm.BootOptions(
            efiSecureBootEnabled=secure_boot, bootOrder=[vim.vm.BootOptions.BootableDiskDevice(deviceKey=boot[0])]))))
    if power_on:
        task(vm.PowerOnVM_Task())
    return MadeVm(vm=vm, name=name, moid=vm._moId, folder=directory, disk_keys=keys, descriptors=descriptors)


def destroy(made: MadeVm) -> None:
    from pyVmomi import vim

    if made.vm.runtime.powerState == vim.VirtualMachinePowerState.poweredOn:
        task(made.vm.PowerOffVM_Task())
    task(made.vm.Destroy_Task())


def lay_nfc_exports(made: MadeVm, images: list[Path]) -> list[Path]:
    """What ESXi's NFC serves for each disk, a streamOptimized VMDK, beside its descriptor as <name>-export.vmdk."""
    exports = []
    for descriptor, image in zip(made.descriptors, images):
        export = descriptor.with_name(descriptor.stem + "-export.vmdk")
        subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized",
                        str(image), str(export)], check=True)  # fmt: skip
        exports.append(export)
    return exports


def snapshot_names(vm: Any) -> list[str]:
    """The names of every snapshot of a made VM, the whole tree."""
    info = vm.vm.snapshot
    found, todo = [], list(info.rootSnapshotList if info else [])
    while todo:
        node = todo.pop()
        found.append(node.name)
        todo.extend(node.childSnapshotList or [])
    return found
