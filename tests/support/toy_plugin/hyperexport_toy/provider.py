"""The toy provider: only its SDK calls (here: httpx against the toy cloud's API)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

import httpx

from hyperexport.errors import AccessDeniedError, InvalidInputError, SourceNotFoundError, TransferError
from hyperexport.models import DiskFormat, DiskSource, DiskType, ExportOptions, ExportResult, Resource, VmInfo
from hyperexport.providers.contract import CliFlag, Provider
from hyperexport.providers.session import ExportSession
from hyperexport.transfer import HttpRangeSource
from hyperexport.transfer.defaults import TransferDefaults

from .credentials import ToyLogin
from .options import ToyOptions

_VM = re.compile(r"^[A-Za-z0-9_-]+$")


class ToyProvider(Provider[ToyOptions, ToyLogin]):
    """VMs of the toy cloud; credentials: a ToyLogin (from a Hyperexport Toy Credentials block)."""

    name = "toy"
    title = "Toy cloud (tests)"
    options_type = ToyOptions
    credentials_type = ToyLogin
    flags = (CliFlag(flag="--vm", option="vm", help="VM name in the toy cloud (toy)"),)
    label_options = ("vm",)
    cleanup_options = ("api_url",)
    recommended_limit = 2
    transfer = TransferDefaults(connections=4, chunk_size=1024 * 1024)

    def check(self, options: ToyOptions, export: ExportOptions) -> None:
        if urlsplit(options.api_url).scheme not in ("http", "https"):
            raise InvalidInputError(f"api_url must be an http(s) URL, not {options.api_url!r}", field="source.api_url")
        if not _VM.match(options.vm):
            raise InvalidInputError(f"{options.vm!r} is not a toy VM name (letters, digits, - and _)", field="source.vm")

    def describe(self, options: ToyOptions) -> str:
        return f"toy VM {options.vm} at {options.api_url}"

    def export(self, session: ExportSession[ToyLogin], options: ToyOptions, export: ExportOptions) -> ExportResult:
        with _client(options, session.credentials) as api:
            vm = _json(api.get(f"/vms/{options.vm}"), f"VM {options.vm}")
            created = _json(api.post(f"/vms/{options.vm}/exports", json={"run_id": session.run_id}), "a new export")
            session.record("export", created["id"], options.api_url)
            described = _json(api.get(f"/exports/{created['id']}"), f"export {created['id']}")
        disks = [
            DiskSource(id=f"disk-{i}", location=d["url"], format=DiskFormat.raw, size_bytes=d["size"],
                       disk_type=DiskType.boot if i == 0 else DiskType.data, boot_order_hint=i, file_name=d["name"])
            for i, d in enumerate(described["disks"])
        ]  # fmt: skip
        return ExportResult(provider=self.name, export_method="toy-export", vm=VmInfo(vm_name=vm["name"], cpu=vm["cpu"]), disks=disks)

    def open_disk(self, disk: DiskSource, options: ToyOptions, credentials: ToyLogin | None) -> HttpRangeSource:
        return HttpRangeSource(disk.location, headers=credentials.headers() if credentials else {}, name=disk.file_name)

    def remove(self, run_id: str, resources: Sequence[Resource], options: ToyOptions, credentials: ToyLogin | None) -> list[Resource]:
        removed = []
        with _client(options, credentials) as api:
            for resource in resources:
                answer = api.delete(f"/exports/{resource.id}")
                if answer.status_code not in (204, 404):
                    raise TransferError(f"could not remove toy export {resource.id}: HTTP {answer.status_code}; run the clean-up again")
                removed.append(resource)
        return removed

    def run_resources(self, run_id: str, options: ToyOptions, credentials: ToyLogin | None) -> list[Resource]:
        with _client(options, credentials) as api:
            found = _json(api.get("/exports", params={"run_id": run_id}), f"the exports of run {run_id}")
        return [Resource(kind="export", id=e["id"], location=options.api_url) for e in found]


def _client(options: ToyOptions, credentials: ToyLogin | None) -> httpx.Client:
    return httpx.Client(base_url=options.api_url, headers=credentials.headers() if credentials else {}, timeout=30, trust_env=False)


def _json(answer: httpx.Response, what: str):
    if answer.status_code in (401, 403):
        raise AccessDeniedError(f"the toy cloud refused the credentials while reading {what}; check the credentials block")
    if answer.status_code == 404:
        raise SourceNotFoundError(f"the toy cloud has no {what}")
    if answer.status_code >= 400:
        raise TransferError(f"the toy cloud answered HTTP {answer.status_code} for {what}; try again")
    return answer.json()
