"""Fixtures of the hyperv provider's tests: one Samba and one fake WinRM host per session, the inventory reset
before each test.

The host's C: drive and its export share are Samba shares (``C$``, ``exports``) over tmp directories holding
real VHDX files made with qemu-img from the session's sample raw images.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.hyperv_host import FakeDisk, FakeHost, FakeVm
from support.hyperv_lab import HOSTILE, VM_DIR, WINRM_PASSWORD, WINRM_USER
from support.hyperv_samba import SMB_PASSWORD, SMB_USER, Samba
from support.hyperv_winrm import WinrmServer

from hyperexport.migration import MigrationRequest
from hyperexport.providers.hyperv import HypervLogin
from hyperexport.validate_input import build



def vhdx(raw: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "vhdx", "-o", "subformat=dynamic", str(raw), str(dest)], check=True)
    return dest


def differencing(base: Path, dest: Path) -> Path:
    """``base`` as a differencing VHDX, as far as a reader can tell (qemu-img makes none): the File Parameters'
    HasParent bit set and a Parent Locator metadata item added (what Hyper-V writes into a checkpoint's .avhdx)."""
    data = bytearray(base.read_bytes())
    table = data.index(b"metadata")  # the metadata region begins with its table's signature
    entry = data.find(uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B").bytes_le, table)  # File Parameters
    data[table + int.from_bytes(data[entry + 16 : entry + 20], "little") + 4] |= 0x02  # Flags: HasParent
    count = int.from_bytes(data[table + 10 : table + 12], "little")
    offsets = [int.from_bytes(data[table + 48 + 32 * i : table + 52 + 32 * i], "little") for i in range(count)]
    locator = uuid.UUID("B04AEFB7-D19E-4A81-B789-25B8E9445913").bytes_le + bytes(4)  # type, no key/value pairs
    at = max(offsets) + 4096
    new = table + 32 + 32 * count
    data[new : new + 32] = (uuid.UUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C").bytes_le + at.to_bytes(4, "little")
                            + len(locator).to_bytes(4, "little") + (4).to_bytes(4, "little") + bytes(4))  # IsRequired
    data[table + 10 : table + 12] = (count + 1).to_bytes(2, "little")
    data[table + at : table + at + len(locator)] = locator
    dest.write_bytes(bytes(data))
    return dest


@dataclass
class Lab:
    samba: Samba
    host: FakeHost
    winrm: WinrmServer
    root: Path
    boot_raw: Path
    data_raw: Path

    @property
    def exports(self) -> Path:
        return self.root / "E" / "exports"

    @property
    def share(self) -> str:
        return "\\\\127.0.0.1\\exports"

    def login(self, **changes) -> HypervLogin:
        fields = dict(endpoint=self.winrm.endpoint, user=WINRM_USER, password=WINRM_PASSWORD, transport="basic",
                      verify_tls=False, smb_user=SMB_USER, smb_password=SMB_PASSWORD, smb_port=self.samba.port,
                      allow_insecure_basic=True)  # fmt: skip
        return HypervLogin(**{**fields, **changes})

    def checkpoints(self) -> list[tuple[str, str]]:
        return [(vm.name, c["name"]) for vm in self.host.vms for c in vm.checkpoints]

    def run_dirs(self) -> list[str]:
        return sorted(p.name for p in (self.exports / "hyperexport").iterdir()) if (self.exports / "hyperexport").is_dir() else []


@pytest.fixture(scope="session")
def hyperv_lab(tmp_path_factory, base_raw, second_raw):
    root = tmp_path_factory.mktemp("hyperv-lab")
    for name in ("C", "E/exports", "denied", "dfs"):
        (root / name).mkdir(parents=True)
    disks = root / "C" / "Hyper-V" / "Virtual Hard Disks"
    vhdx(base_raw, disks / "web01-os.vhdx")
    vhdx(second_raw, disks / "web01-data.vhdx")
    shutil.copyfile(disks / "web01-os.vhdx", disks / "tiny-os.vhdx")
    differencing(disks / "web01-os.vhdx", disks / "chain-os_6A1B2C3D.avhdx")
    shutil.copyfile(disks / "web01-os.vhdx", disks / "chain-os.vhdx")
    host = FakeHost(drives={"C": root / "C", "E": root / "E"}, shares={"exports": "E:\\exports", "C$": "C:\\"})
    samba = Samba(root / "samba", {"C$": root / "C", "exports": root / "E" / "exports", "denied": root / "denied", "dfs": root / "dfs"},
                  denied=("denied",), options={"dfs": ["msdfs root = yes", "msdfs proxy = \\127.0.0.1\\C$"]})  # a referral to C$
    samba.start()
    winrm = WinrmServer(host, WINRM_USER, WINRM_PASSWORD, root / "winrm.log").start()
    try:
        yield Lab(samba, host, winrm, root, base_raw, second_raw)
    finally:
        winrm.stop()
        samba.stop()


def inventory() -> list[FakeVm]:
    """web01: a generation 2 VM whose data disk is listed before its boot disk (the firmware boots SCSI 0:0)."""
    disk = lambda slot, name, size=64 * 2**20, **kw: FakeDisk("SCSI", 0, slot, f"{VM_DIR}\\{name}", size, **kw)  # noqa: E731
    return [
        FakeVm("web01", [disk(1, "web01-data.vhdx", 32 * 2**20), disk(0, "web01-os.vhdx")], boot=("SCSI", 0, 0),
               nics=[("Network Adapter", "00155D010203", "External"), ("Backup", "00155D0A0B0C", "Private")]),  # fmt: skip
        FakeVm("twin", [disk(0, "tiny-os.vhdx")], boot=("SCSI", 0, 0)),
        FakeVm("twin", [disk(0, "tiny-os.vhdx")], boot=("SCSI", 0, 0), state="Off"),
        FakeVm("db01", [disk(0, "tiny-os.vhdx"), FakeDisk("SCSI", 0, 1, None, disk_number=2)], boot=("SCSI", 0, 0)),
        FakeVm("chain01", [disk(0, "chain-os_6A1B2C3D.avhdx", parent=f"{VM_DIR}\\chain-os.vhdx")], boot=("SCSI", 0, 0)),
        FakeVm(HOSTILE, [FakeDisk("IDE", 0, 0, f"{VM_DIR}\\tiny-os.vhdx", 64 * 2**20)], generation=1, secure_boot=False),
        FakeVm("novss", [disk(0, "tiny-os.vhdx")], boot=("SCSI", 0, 0),
               checkpoint_refusal="Production checkpoints cannot be created for 'novss': the backup integration service is not running."),  # fmt: skip
    ]


@pytest.fixture
def hyperv(hyperv_lab) -> Lab:
    """The lab with a fresh inventory, an admin user and an empty export share."""
    host = hyperv_lab.host
    with host.lock:
        host.vms = inventory()
        host.identity = {"user": WINRM_USER, "computer": "HV01", "hyperv_admin": True, "administrator": False}
        host.export_space = None
        host.denied = set()
        host.received.clear()
    shutil.rmtree(hyperv_lab.exports / "hyperexport", ignore_errors=True)
    hyperv_lab.winrm.auth_failures = 0
    return hyperv_lab


@pytest.fixture
def make_request():
    """``make_request(output, vm=..., **options)``: a MigrationRequest for the hyperv provider."""

    def make(output: Path, *, export: dict | None = None, block: str | None = None, **source) -> MigrationRequest:
        return build(MigrationRequest, provider="hyperv", source=source, export={"output_dir": str(output), **(export or {})},
                     converter="qemu-img", credentials_block=block)  # fmt: skip

    return make


BLOCK = "hyperv-lab"


@pytest.fixture
def hyperv_block(prefect_server, hyperv) -> str:
    from blocks.hyperv import HypervCredentials

    HypervCredentials(
        host="127.0.0.1", user=WINRM_USER, password=WINRM_PASSWORD, transport="basic", use_tls=False,
        port=hyperv.winrm.port, smb_user=SMB_USER, smb_password=SMB_PASSWORD, smb_port=hyperv.samba.port,
        allow_insecure_basic=True,  # the fake WinRM host speaks plain HTTP
    ).save(BLOCK, overwrite=True)  # fmt: skip
    return BLOCK
