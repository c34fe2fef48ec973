"""The ``nfc`` method: ExportVm's HttpNfcLease, each disk's device URL read through the transfer engine.

A lease dies after ``info.leaseTimeout`` seconds (about 5 minutes on ESXi) without ``HttpNfcLeaseProgress``,
so a keep-alive thread reports the progress every quarter of that timeout for as long as the downloads take.
The lease is completed when every disk is down and aborted on any failure (a cancelled run included). The
lease ends inside the export: the downloads happen here, into the run's output directory, and the pipeline then
reads the disks in place. The OVF descriptor (``OvfManager.CreateDescriptor``) is written beside them.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from ...errors import AccessDeniedError, InvalidInputError, TransferError, UnsafeImageError
from ...models import ExportOptions
from ...paths import check_relative_name, contained
from ...progress import ProgressCallback
from ...staging import transfer_options
from ...transfer import download
from ...transfer.defaults import TransferDefaults
from ...transfer.source import Buffer, SourceInfo
from ..polling import wait_for
from .credentials import VsphereLogin, pyvmomi
from .errors import fault_error, translated
from .metadata import DiskDevice

log = logging.getLogger(__name__)

OVF_LIMIT = 4 * 2**20
_DEVICE_KEY = re.compile(r"^/[^/]+/(?P<controller>[A-Za-z]+?)(?P<bus>\d+):(?P<unit>\d+)$")
#: one connection per device URL: NFC streams a disk from its start, no ranges
NFC_TRANSFER = TransferDefaults(connections=1, chunk_size=16 * 2**20)


class NfcFileSource:
    """One device URL of a lease: streamed from offset 0 (NFC serves no ranges), its length from a HEAD."""

    def __init__(self, url: str, name: str, login: VsphereLogin, max_size: int) -> None:
        self.name = name
        self._url, self._login, self._max_size = url, login, max_size
        self._client = httpx.Client(verify=login.ssl_context, timeout=httpx.Timeout(60, read=300), trust_env=False)

    def describe(self) -> SourceInfo:
        answer = self._request("HEAD")
        length = answer.headers.get("content-length", "")
        if not length.isdigit():
            raise TransferError(f"{self.name}: the NFC server gave no length for the disk; run the export again")
        if int(length) > self._max_size:
            raise UnsafeImageError(f"{self.name}: the NFC server offers {length} bytes for a disk of {self._max_size}")
        return SourceInfo(size=int(length), supports_ranges=False)

    def _request(self, method: str) -> httpx.Response:
        try:
            answer = self._client.request(method, self._url)
        except httpx.HTTPError as error:
            raise TransferError(f"{self.name}: the NFC download failed ({type(error).__name__})") from None
        self._check(answer)
        return answer

    def _check(self, answer: httpx.Response) -> None:
        if answer.status_code in (401, 403):
            raise AccessDeniedError(
                f"{self.name}: the NFC server refused the download ({answer.status_code}); the user needs the "
                "privilege VApp.Export on the VM",
                field="credentials_block",
            )
        if answer.status_code == 404:  # the lease expired or was aborted: a new export gets a new lease
            raise TransferError(f"{self.name}: the lease's device URL is gone (the lease ended or timed out); will retry")
        if answer.status_code >= 400:
            raise TransferError(f"{self.name}: the NFC server answered {answer.status_code}")

    def read_range(self, offset: int, length: int) -> Iterator[Buffer]:
        if offset != 0:
            raise TransferError(f"{self.name}: NFC streams a disk from its start, not from offset {offset}")
        sent = 0
        try:
            with self._client.stream("GET", self._url) as answer:
                self._check(answer)
                for chunk in answer.iter_bytes(256 * 1024):
                    sent += len(chunk)
                    if sent > length:
                        raise UnsafeImageError(f"{self.name}: the NFC server sent more than the {length} bytes it announced")
                    yield chunk
        except httpx.HTTPError as error:
            raise TransferError(f"{self.name}: the NFC download broke off after {sent} bytes ({type(error).__name__})") from None
        if sent != length:
            raise TransferError(f"{self.name}: the NFC download ended after {sent} of {length} bytes")

    def close(self) -> None:
        self._client.close()


class KeepAlive(threading.Thread):
    """HttpNfcLeaseProgress every ``interval`` seconds until stopped: the lease outlives any download."""

    def __init__(self, lease: Any, interval: float) -> None:
        super().__init__(daemon=True, name="nfc-lease-keepalive")
        self.lease, self.interval = lease, interval
        self.percent = 0
        self.failure: BaseException | None = None
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            try:
                with translated("keeping the NFC lease alive"):
                    self.lease.HttpNfcLeaseProgress(percent=self.percent)
            except Exception as error:  # noqa: BLE001 - the download that needs the lease reports it
                self.failure = error
                return

    def reporter(self, done: int, overall: int) -> ProgressCallback:
        """A download's progress callback that sets the percentage the next keep-alive reports."""

        def progress(current: int, total: int, file_name: str, file_index: int, total_files: int) -> None:
            self.percent = min(99, int(100 * (done + current) / overall))

        return progress

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=30)


def _wait_ready(lease: Any, timeout: float, interval: float) -> Any:
    def check() -> Any | None:
        with translated("waiting for the NFC lease"):
            state = lease.state
            if state == "ready":
                return lease.info
            if state == "error":
                raise fault_error(lease.error, "preparing the NFC export lease")
        return None

    return wait_for(check, what="the NFC export lease", timeout=timeout, interval=interval)


def _device_url(url: str, login: VsphereLogin) -> str:
    """The device URL with its ``*`` host filled in; one on another host is refused."""
    parts = urlsplit(url)
    if parts.scheme != "https" or parts.hostname not in ("*", login.host) or not parts.path.startswith("/nfc/"):
        raise UnsafeImageError(f"the lease's device URL {parts.scheme}://{parts.hostname}{parts.path} is not on {login.address}")
    return f"https://{login.host}:{login.port}{parts.path}"


def _match(device_urls: list[Any], devices: list[DiskDevice], controllers: dict[int, tuple[str, int]]) -> list[Any]:
    """The lease's disk URLs in the order of ``devices`` (by controller and unit)."""
    by_slot = {}
    for item in device_urls:
        match = _DEVICE_KEY.match(str(item.key))
        if item.disk and match:
            by_slot[(match["controller"], int(match["bus"]), int(match["unit"]))] = item
    ordered = []
    for device in devices:
        kind, bus = controllers.get(device.controller_key, ("", -1))
        item = by_slot.get((kind, bus, device.unit))
        if item is None:
            raise InvalidInputError(f"the NFC lease offers no URL for {device.label} ({kind}{bus}:{device.unit})")
        ordered.append(item)
    return ordered


def export_disks(
    vm: Any, content: Any, login: VsphereLogin, devices: list[DiskDevice], controllers: dict[int, tuple[str, int]],
    export_options: ExportOptions, stem: str, *, interval: float, keepalive_seconds: float | None = None,
) -> tuple[list[Path], Path]:
    """Every disk of the powered-off ``vm`` downloaded into ``<output>/nfc/`` under a lease; and the OVF."""
    vim, _ = pyvmomi()
    with translated(f"starting the NFC export of VM {vm._moId}"):
        lease = vm.ExportVm()
    keepalive: KeepAlive | None = None
    try:
        info = _wait_ready(lease, export_options.export_timeout_seconds, interval)
        timeout = float(info.leaseTimeout or 300)
        keepalive = KeepAlive(lease, keepalive_seconds or max(0.05, timeout / 4))
        keepalive.start()
        directory = contained(export_options.output_dir, "nfc", "NFC download directory")
        directory.mkdir(parents=True, exist_ok=True)
        total = sum(d.capacity_bytes for d in devices) or 1
        done = 0
        paths, files = [], []
        for i, (device, item) in enumerate(zip(devices, _match(list(info.deviceUrl), devices, controllers))):
            name = f"{stem}-disk-{i}.vmdk"
            check_relative_name(name, "NFC disk file name", plain=True)
            source = NfcFileSource(_device_url(item.url, login), f"{device.label} of VM {vm._moId}", login,
                                   max_size=device.capacity_bytes + 2**30)  # fmt: skip
            result = download(source, directory / name, transfer_options(export_options, NFC_TRANSFER),
                              progress=keepalive.reporter(done, total),
                              file_index=i + 1, total_files=len(devices))  # fmt: skip
            if keepalive.failure is not None:
                raise keepalive.failure
            done += device.capacity_bytes
            paths.append(result.path)
            files.append(vim.OvfManager.OvfFile(deviceId=item.key, path=name, size=result.size))
        ovf = _descriptor(content, vm, files, stem, directory)
        keepalive.stop()
        with translated("completing the NFC lease"):
            lease.HttpNfcLeaseComplete()
        return paths, ovf
    except BaseException as error:
        if keepalive is not None:
            keepalive.stop()
        try:
            lease.HttpNfcLeaseAbort()
        except Exception as abort_error:  # noqa: BLE001 - the lease times out by itself; the download's error is the one to report
            log.warning("could not abort the NFC lease: %s", type(abort_error).__name__)
        failure = keepalive.failure if keepalive is not None else None
        if isinstance(error, Exception) and failure is not None and failure is not error:
            raise failure from None  # the lease was lost first: the download's failure only follows from it
        raise


def _descriptor(content: Any, vm: Any, files: list[Any], stem: str, directory: Path) -> Path:
    vim, _ = pyvmomi()
    with translated(f"creating the OVF descriptor of VM {vm._moId}"):
        result = content.ovfManager.CreateDescriptor(
            obj=vm, cdp=vim.OvfManager.CreateDescriptorParams(ovfFiles=files, name=stem)
        )
    if result.error:
        raise fault_error(result.error[0].fault, f"creating the OVF descriptor of VM {vm._moId}")
    text = str(result.ovfDescriptor or "")
    if not text.lstrip().startswith("<") or len(text) > OVF_LIMIT:
        raise UnsafeImageError(f"vSphere's OVF descriptor of VM {vm._moId} is not an XML document under {OVF_LIMIT} bytes")
    path = directory / f"{stem}.ovf"
    path.write_text(text, encoding="utf-8")
    return path
