"""The VHDX files read over SMB by the transfer engine: parallel ranges, resumed after an interruption, sizes
checked against what the host reported, hostile locations refused."""

from __future__ import annotations

import hashlib
import threading
import time

import pytest
from support.hyperv_lab import VM_DIR
from support.hyperv_proxy import StallingProxy

from hyperexport import cancel
from hyperexport.errors import CancelledError, InvalidInputError, SourceNotFoundError, TransferError, UnsafeImageError
from hyperexport.providers.hyperv.smb import SmbFileSource, SmbPath, host_path_on_share
from hyperexport.transfer import SourceChangedError, TransferOptions, download

MiB = 2**20


def _source(hyperv, name="web01-os.vhdx", **kwargs) -> tuple[SmbFileSource, bytes]:
    local = hyperv.host.local(f"{VM_DIR}\\{name}")
    path = host_path_on_share(f"{VM_DIR}\\{name}", None, None, "127.0.0.1")
    assert path.unc == f"\\\\127.0.0.1\\C$\\Hyper-V\\Virtual Hard Disks\\{name}"
    data = local.read_bytes()
    return SmbFileSource(hyperv.login(), path, expected_size=kwargs.get("expected_size", len(data))), data


def _options(**changes) -> TransferOptions:
    return TransferOptions(**{"connections": 4, "chunk_size": MiB, "read_size": 256 * 1024, "progress_interval": 0.0, **changes})


def test_parallel_ranged_reads_give_the_file(hyperv, tmp_path):
    source, data = _source(hyperv)
    result = download(source, tmp_path / "disk.vhdx", _options())
    assert (tmp_path / "disk.vhdx").read_bytes() == data
    assert result.sha256 == hashlib.sha256(data).hexdigest() and result.ranges_fetched == -(-len(data) // MiB)


def test_an_interrupted_read_resumes_where_it_stopped(hyperv, tmp_path):
    source, data = _source(hyperv)
    dest = tmp_path / "disk.vhdx"

    def stop_half_way(current, total, *_):
        if current >= 8 * MiB:
            cancel.request_cancel()

    try:
        with pytest.raises(CancelledError):
            download(source, dest, _options(bandwidth_limit_bps=16 * MiB), progress=stop_half_way)
    finally:
        cancel.reset()
    assert not dest.exists()
    result = download(source, dest, _options())
    assert dest.read_bytes() == data
    assert result.bytes_resumed >= 8 * MiB - 4 * MiB and result.bytes_fetched == len(data) - result.bytes_resumed


def test_a_size_other_than_the_hosts_is_refused(hyperv, tmp_path):
    source, data = _source(hyperv, expected_size=12345)
    with pytest.raises(SourceChangedError) as raised:
        download(source, tmp_path / "disk.vhdx", _options())
    assert f"is {len(data)} bytes on the share but the host reported 12345" in str(raised.value)


@pytest.mark.parametrize("location", [
    "smb://127.0.0.1/C$/../etc/passwd", "smb://127.0.0.1/C$/a\\..\\b.vhdx", "smb://127.0.0.1//x.vhdx", "file:///etc/passwd",
    "smb://a\\b/s/x.vhdx", "smb://127.0.0.1/C$", "smb://127.0.0.1", "smb://-evil/C$/x.vhdx",
])  # fmt: skip
def test_hostile_locations_are_refused(location):
    with pytest.raises((UnsafeImageError, InvalidInputError)):
        SmbPath.from_location(location)


@pytest.mark.parametrize("host_path", ["C:\\VMs\\..\\..\\x.vhdx", "\\\\evil\\share\\x.vhdx", "C:\\VMs\\a\x00.vhdx", "relative.vhdx",
                                       "D:\\Hyper-V\\VMs", "D:\\Hyper-V\\VMs\\", "C:\\"])
def test_hostile_disk_paths_from_the_host_are_refused(host_path):
    with pytest.raises(UnsafeImageError):
        host_path_on_share(host_path, SmbPath.from_unc("\\\\hv01\\vms"), "D:\\Hyper-V\\VMs", "hv01")


def test_a_disk_under_the_share_is_read_through_it():
    share = SmbPath.from_unc("\\\\hv01\\vms")
    path = host_path_on_share("D:\\Hyper-V\\VMs\\web\\os.vhdx", share, "d:\\hyper-v\\vms", "hv01")
    assert path.unc == "\\\\hv01\\vms\\web\\os.vhdx"
    assert host_path_on_share("E:\\other\\os.vhdx", share, "D:\\Hyper-V\\VMs", "hv01").unc == "\\\\hv01\\E$\\other\\os.vhdx"


def test_a_differencing_vhdx_is_refused_from_its_own_bytes(hyperv, tmp_path):
    """Whatever the host says, a file with a parent is never downloaded alone."""
    source, _ = _source(hyperv, "chain-os_6A1B2C3D.avhdx")
    with pytest.raises(InvalidInputError) as raised:
        download(source, tmp_path / "disk.vhdx", _options())
    assert "is a differencing VHDX (it has a parent)" in str(raised.value) and "Remove-VMCheckpoint" in str(raised.value)
    assert not list(tmp_path.iterdir())


def test_a_file_that_is_no_vhdx_is_refused(hyperv, tmp_path):
    local = hyperv.host.local(f"{VM_DIR}\\not-a-disk.vhdx")
    local.write_bytes(b"MZ" + bytes(300 * 1024))
    try:
        source, _ = _source(hyperv, "not-a-disk.vhdx")
        with pytest.raises(UnsafeImageError, match="is not a VHDX file"):
            download(source, tmp_path / "disk.vhdx", _options())
    finally:
        local.unlink()


def test_a_dfs_referral_is_never_followed(hyperv, tmp_path):
    """The share ``dfs`` refers every path to ``C$`` (smbclient's own connect would follow it, with our login, to
    whatever server the host names): it is refused as the missing share it is on the host, nothing read."""
    path = SmbPath.from_unc("\\\\127.0.0.1\\dfs\\Hyper-V\\Virtual Hard Disks\\web01-os.vhdx", "disk")
    source = SmbFileSource(hyperv.login(), path, expected_size=None)
    try:
        with pytest.raises(SourceNotFoundError, match="has no share named 'dfs'"):
            download(source, tmp_path / "disk.vhdx", _options())
    finally:
        source.close()
    assert not list(tmp_path.iterdir())


@pytest.fixture
def stalling_proxy(hyperv):
    proxy = StallingProxy(hyperv.samba.port).start()
    yield proxy
    proxy.stop()


def _stall_after_first_range(proxy):
    def progress(current, *_):
        if current:
            proxy.stalled.set()

    return progress


def test_a_host_that_goes_silent_fails_the_read_within_its_timeout(hyperv, stalling_proxy, tmp_path):
    source, _ = _source(hyperv)
    source.login = hyperv.login(smb_port=stalling_proxy.port)
    started = time.monotonic()
    with pytest.raises(TransferError, match="no answer within 1"):
        download(source, tmp_path / "disk.vhdx", _options(read_timeout=1.0, max_attempts=1, connections=2),
                 progress=_stall_after_first_range(stalling_proxy))  # fmt: skip
    assert time.monotonic() - started < 15
    source.close()


def test_a_cancel_interrupts_a_read_the_host_never_answers(hyperv, stalling_proxy, tmp_path):
    source, _ = _source(hyperv)
    source.login = hyperv.login(smb_port=stalling_proxy.port)
    timer = threading.Timer(1.0, cancel.request_cancel)
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(CancelledError):
            download(source, tmp_path / "disk.vhdx", _options(read_timeout=300.0, connections=2),
                     progress=_stall_after_first_range(stalling_proxy))  # fmt: skip
    finally:
        timer.join()
        cancel.reset()
        source.close()
    assert time.monotonic() - started < 15


@pytest.mark.parametrize("encrypt", [True, False])
def test_smb_traffic_is_encrypted_unless_turned_off(hyperv, encrypt):
    source, _ = _source(hyperv)
    if not encrypt:
        source.login = hyperv.login(smb_encrypt=False)
    try:
        source.describe()
        sessions = [s for c in source._cache.values() for s in c.session_table.values()]
        assert sessions and all(bool(s.encrypt_data) is encrypt for s in sessions)
    finally:
        source.close()


def test_a_disk_location_on_another_server_is_refused(hyperv):
    from hyperexport.models import DiskSource, DiskType
    from hyperexport.providers.hyperv.provider import HypervProvider

    disk = DiskSource(id="d0", location="smb://attacker.example/C$/x.vhdx", disk_type=DiskType.boot, file_name="x.vhdx")
    with pytest.raises(UnsafeImageError, match="is not on the Hyper-V host '127.0.0.1'"):
        HypervProvider().open_disk(disk, None, hyperv.login())  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [0xC0000234, 0xC0000193, 0xC0000224, 0xC000006F, 0xC0000070])
def test_a_locked_expired_or_restricted_account_is_not_retried(hyperv, status):
    """Each retry of a refused logon counts towards the account's lock-out: these are permanent."""
    from smbprotocol.exceptions import SMBResponseException
    from smbprotocol.header import SMB2HeaderResponse

    from hyperexport.errors import AccessDeniedError
    from hyperexport.providers.hyperv.smb import smb_errors

    header = SMB2HeaderResponse()
    header["status"] = status
    with pytest.raises(AccessDeniedError) as raised, smb_errors("listing", SmbPath("hv01", "exports"), hyperv.login()):
        raise SMBResponseException(header)
    assert f"NTSTATUS {status:#x}" in str(raised.value) and raised.value.field == "credentials_block"


def test_file_parameters_past_the_end_of_the_file_are_refused(hyperv):
    """A metadata region that claims more than the file holds, its File Parameters beyond the last byte."""
    import uuid

    from hyperexport.providers.hyperv.vhdx import REGION_TABLE, has_parent

    data = bytearray(hyperv.host.local(f"{VM_DIR}\\tiny-os.vhdx").read_bytes())
    entry = data.index(uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le, REGION_TABLE)  # metadata region
    start = int.from_bytes(data[entry + 16 : entry + 24], "little")
    data[entry + 24 : entry + 28] = (2**32 - 1).to_bytes(4, "little")
    item = data.index(uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B").bytes_le, start)  # File Parameters
    data[item + 16 : item + 20] = (len(data) - start).to_bytes(4, "little")
    with pytest.raises(UnsafeImageError, match="file parameters lie outside"):
        has_parent(lambda offset, length: bytes(data[offset : offset + length]), len(data), "planted.vhdx")
