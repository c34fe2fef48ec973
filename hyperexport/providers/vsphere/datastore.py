"""Reading a disk's frozen state from the datastore's HTTPS ``/folder`` endpoint.

A disk's backing names its descriptor (``[ds] web01/web01.vmdk``); the descriptor names the flat extent that
holds the bytes (``web01-flat.vmdk``, createType ``vmfs`` on ESXi, ``monolithicFlat`` elsewhere). Both come
from the server and are checked before use: a small ASCII descriptor, one flat extent at offset 0 in the
descriptor's own directory, exactly the disk's capacity. The extent is then read with Range requests through
the transfer engine, each carrying the session cookie (never the password). With CBT on, the allocated areas
(``QueryChangedDiskAreas(snapshot, key, offset, "*")``) are the only ranges fetched; the rest stays a hole.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from typing import Any, NamedTuple
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import httpx

from ...errors import AccessDeniedError, InvalidInputError, SourceNotFoundError, TransferError, UnsafeImageError
from ...transfer import HttpRangeSource
from ...transfer.source import Buffer, DataRange, SourceInfo
from .credentials import VsphereLogin, pyvmomi
from .errors import translated

log = logging.getLogger(__name__)

DESCRIPTOR_LIMIT = 64 * 1024
_DATASTORE_PATH = re.compile(r"^\[(?P<datastore>[^\]\x00-\x1f]+)\] (?P<path>[^\x00-\x1f]+)$")
_EXTENT = re.compile(r'^(?:RW|RDONLY)\s+(?P<sectors>\d+)\s+(?P<kind>FLAT|VMFS)\s+"(?P<file>[^"/\\]+)"(?:\s+(?P<offset>\d+))?\s*$')
_CREATE_TYPE = re.compile(r'^createType\s*=\s*"(?P<type>[^"]*)"\s*$', re.MULTILINE)
_PARENT_CID = re.compile(r"^parentCID\s*=\s*(?P<cid>[0-9a-fA-F]+)\s*$", re.MULTILINE)
_MAX_AREAS_CALLS = 1_000_000
#: CBT areas of one disk: a real disk has far fewer (ESXi merges them); each costs a range to read
MAX_AREAS = 1_000_000
SECTOR = 512


class DatastorePath(NamedTuple):
    datastore: str
    path: str  # relative to the datastore's root: folder/name.vmdk

    def __str__(self) -> str:
        return f"[{self.datastore}] {self.path}"

    def sibling(self, name: str) -> DatastorePath:
        folder = self.path.rpartition("/")[0]
        return DatastorePath(self.datastore, f"{folder}/{name}" if folder else name)


def parse_datastore_path(text: str) -> DatastorePath:
    """``[datastore] folder/name.vmdk``, refused when it could leave the datastore (``..``, absolute paths)."""
    match = _DATASTORE_PATH.match(text)
    parts = match["path"].split("/") if match else []
    if not match or match["path"].startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise UnsafeImageError(f"vSphere named a disk file {text!r}, which is not a plain [datastore] folder/file path")
    return DatastorePath(match["datastore"], match["path"])


def folder_url(login: VsphereLogin, datacenter_path: str, path: DatastorePath) -> str:
    query = urlencode({"dcPath": datacenter_path, "dsName": path.datastore}, quote_via=quote)
    return f"https://{login.host}:{login.port}/folder/{quote(path.path)}?{query}"


def session_cookie(service_instance: Any) -> str:
    """``vmware_soap_session="…"`` of a logged-in ServiceInstance: what /folder accepts instead of a password."""
    cookie = str(service_instance._stub.cookie or "")
    return cookie.split(";", 1)[0].strip()


def flat_extent(descriptor: bytes, disk: DatastorePath, capacity: int) -> DatastorePath:
    """The one flat extent a descriptor names, checked against the disk's capacity."""
    descriptor = descriptor.rstrip(b"\x00")  # qemu-img pads its descriptors to a sector with NULs
    if len(descriptor) > DESCRIPTOR_LIMIT or b"\x00" in descriptor:
        raise UnsafeImageError(f"{disk} is not a VMDK descriptor (binary, or larger than {DESCRIPTOR_LIMIT} bytes)")
    try:
        text = descriptor.decode("ascii")
    except UnicodeDecodeError:
        raise UnsafeImageError(f"{disk} is not a VMDK descriptor (not ASCII)") from None
    create_type = _CREATE_TYPE.search(text)
    kind = create_type["type"] if create_type else "?"
    parent = _PARENT_CID.search(text)
    if kind not in ("vmfs", "monolithicFlat") or (parent and parent["cid"].lower() != "ffffffff"):
        raise InvalidInputError(
            f"{disk} is a {kind} disk, not a flat one: the datastore method reads flat disks (vmfs, monolithicFlat). "
            "Use the nfc export method for it (with the VM powered off), or convert the disk to thick or thin "
            "provisioning in vSphere first."
        )
    extents = [m for m in (_EXTENT.match(line.strip()) for line in text.splitlines()) if m]
    if len(extents) != 1 or int(extents[0]["offset"] or 0) != 0:
        raise UnsafeImageError(f"{disk} names {len(extents)} extents; the datastore method reads exactly one flat extent")
    size = int(extents[0]["sectors"]) * 512
    if size != capacity:
        raise UnsafeImageError(f"{disk}'s extent holds {size} bytes where vSphere says the disk has {capacity}")
    return disk.sibling(extents[0]["file"])


def read_descriptor(login: VsphereLogin, cookie: str, url: str, disk: DatastorePath) -> bytes:
    """The disk's descriptor file (at most DESCRIPTOR_LIMIT + 1 bytes of it)."""
    data = b""
    try:
        with httpx.Client(verify=login.ssl_context, timeout=60, trust_env=False) as client:
            with client.stream("GET", url, headers={"Cookie": cookie, "Accept-Encoding": "identity"}) as answer:
                if answer.status_code == 404:
                    raise SourceNotFoundError(f"the datastore file {disk} is not there (the VM's disk was moved or deleted)")
                if answer.status_code in (401, 403):
                    raise AccessDeniedError(
                        f"the datastore refused to serve {disk} ({answer.status_code}): the user needs the privilege "
                        "Datastore.Browse on its datastore"
                    )
                if answer.status_code != 200:
                    raise TransferError(f"the datastore answered {answer.status_code} for {disk}; will retry")
                for chunk in answer.iter_bytes():
                    data += chunk
                    if len(data) > DESCRIPTOR_LIMIT:
                        break
    except httpx.HTTPError as error:
        raise TransferError(f"reading {disk} from the datastore failed ({type(error).__name__}); will retry") from None
    return data


def allocated_areas(vm: Any, snapshot: Any, device_key: int, capacity: int, *, max_areas: int = MAX_AREAS) -> list[DataRange]:
    """The areas of the disk that hold data, from CBT (``changeId="*"``), checked and merged."""
    areas: list[DataRange] = []
    offset, listed = 0, 0
    with translated(f"asking CBT for the allocated areas of disk {device_key} of VM {vm._moId}"):
        for _ in range(_MAX_AREAS_CALLS):
            if offset >= capacity:
                break
            info = vm.QueryChangedDiskAreas(snapshot=snapshot, deviceKey=device_key, startOffset=offset, changeId="*")
            for area in info.changedArea or []:
                start, length = int(area.start), int(area.length)
                listed += 1
                if listed > max_areas:
                    raise UnsafeImageError(f"CBT lists more than {max_areas} areas for disk {device_key}; no disk has that many")
                if start % SECTOR or length % SECTOR:
                    raise UnsafeImageError(
                        f"CBT answered an area [{start}, +{length}) for disk {device_key} that is not {SECTOR}-byte aligned"
                    )
                if start < offset or length <= 0 or start + length > capacity or (areas and start < areas[-1].end):
                    raise UnsafeImageError(f"CBT answered an area [{start}, +{length}) outside or out of order for disk {device_key}")
                if areas and areas[-1].end == start:
                    areas[-1] = DataRange(areas[-1].offset, areas[-1].length + length)
                else:
                    areas.append(DataRange(start, length))
            end = int(info.startOffset) + int(info.length)
            if end <= offset:
                raise UnsafeImageError(f"CBT's answer for disk {device_key} does not advance past offset {offset}")
            offset = end
    return areas


class FolderLocation(NamedTuple):
    """What a DiskSource's location holds: the extent's /folder URL and, for CBT, the snapshot and device."""

    url: str
    name: str
    vm: str
    snapshot: str
    device_key: int
    cbt: bool

    def encode(self) -> str:
        return self.url + "#" + urlencode(
            {"name": self.name, "vm": self.vm, "snapshot": self.snapshot, "disk": self.device_key, "cbt": int(self.cbt)}
        )

    @classmethod
    def decode(cls, location: str, login: VsphereLogin) -> FolderLocation:
        url, _, fragment = location.partition("#")
        parts, fields = urlsplit(url), parse_qs(fragment)
        try:
            decoded = cls(url, fields["name"][0], fields["vm"][0], fields["snapshot"][0], int(fields["disk"][0]),
                          fields["cbt"][0] == "1")  # fmt: skip
        except (KeyError, IndexError, ValueError):
            raise InvalidInputError(f"{location!r} is not a disk location of the vsphere provider") from None
        if parts.scheme != "https" or parts.hostname != login.host or (parts.port or 443) != login.port or not parts.path.startswith("/folder/"):
            raise UnsafeImageError(f"disk location {url!r} is not on the vSphere host of the credentials ({login.address})")
        return decoded


class FolderDiskSource:
    """A flat extent on a datastore, read through /folder with a session of its own (logged out on close)."""

    def __init__(self, login: VsphereLogin, location: FolderLocation) -> None:
        self.name = location.name
        self._login, self._location = login, location
        self._lock = threading.Lock()
        self._options: Any = None
        self._service_instance: Any = None
        self._http: HttpRangeSource | None = None

    def configure(self, options: Any) -> None:
        self._options = options

    def describe(self) -> SourceInfo:
        with self._lock:
            self._close()
            self._service_instance = self._login.connect()
            areas = self._areas(self._service_instance)
            self._http = HttpRangeSource(
                self._location.url, headers={"Cookie": session_cookie(self._service_instance)}, data_ranges=areas,
                verify_tls=self._login.ssl_context, name=self.name,
            )  # fmt: skip
            if self._options is not None:
                self._http.configure(self._options)
            http = self._http
        try:
            return http.describe()
        except SourceNotFoundError:
            raise self._vanished() from None

    def _areas(self, service_instance: Any) -> list[DataRange] | None:
        location = self._location
        if not location.cbt:
            log.info("%s: CBT is off on the VM: reading the whole disk", self.name)
            return None
        vim, _ = pyvmomi()
        stub = service_instance._stub
        vm, snapshot = vim.VirtualMachine(location.vm, stub), vim.vm.Snapshot(location.snapshot, stub)
        with translated(f"reading the capacity of disk {location.device_key}"):
            capacity = next(int(d.capacityInBytes) for d in snapshot.config.hardware.device if d.key == location.device_key)
        areas = allocated_areas(vm, snapshot, location.device_key, capacity)
        log.info("%s: CBT lists %d allocated area(s), %d of %d bytes: only those are read", self.name, len(areas),
                 sum(a.length for a in areas), capacity)  # fmt: skip
        return areas

    def read_range(self, offset: int, length: int) -> Iterator[Buffer]:
        http = self._http
        if http is None:
            raise InvalidInputError(f"{self.name}: read before describe")
        try:
            yield from http.read_range(offset, length)
        except SourceNotFoundError:
            raise self._vanished() from None

    def _vanished(self) -> SourceNotFoundError:
        return SourceNotFoundError(
            f"the datastore file {self.name} vanished during the download (deleted, or moved by a Storage vMotion or a "
            "snapshot consolidation); check the VM's disks in vSphere and run the migration again"
        )

    def _close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._service_instance is not None:
            from pyVim.connect import Disconnect

            try:
                Disconnect(self._service_instance)
            except Exception:  # noqa: BLE001 - the session expires by itself
                pass
            self._service_instance = None

    def close(self) -> None:
        with self._lock:
            self._close()
