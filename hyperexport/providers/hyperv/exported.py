"""The ``export`` method: Export-VM into SHARE\\hyperexport\\RUN_ID (the whole VM, live), its VHDX files read
over SMB from there, the directory removed afterwards (on failure too) by the core's clean-up."""

from __future__ import annotations

from pydantic import Field

from ...errors import InsufficientSpaceError, InvalidInputError, UnsafeImageError
from ..session import ExportSession
from .checkpoint import checked_run_id
from .inventory import VmDescription, _Answer, parsed
from .powershell import HostError, HypervHost
from .smb import SmbPath, components

KIND = "export-dir"
DIRECTORY = "hyperexport"


class ExportedFile(_Answer):
    path: str = Field(max_length=32767)
    size: int = Field(ge=0)


class Exported(_Answer):
    files: list[ExportedFile] = Field(default_factory=list)


def run_directory(share: SmbPath, run_id: str) -> SmbPath:
    return share.child(DIRECTORY, checked_run_id(run_id))


def is_run_directory(path: SmbPath, run_id: str) -> bool:
    return path.parts[-2:] == (DIRECTORY, run_id)


def share_local_path(host: HypervHost, share: SmbPath, given: str | None) -> str:
    """The host directory behind ``share`` (its subdirectories included)."""
    base = given
    if base is None:
        try:
            base = str((host.run("share_path", name=share.share) or {}).get("path") or "")
        except HostError as error:
            raise InvalidInputError(
                f"the host {host.login.host} has no SMB share {share.share!r} ({error.message}); give the share that "
                "exists, or its local directory as share_local_path",
                field="source.share",
            ) from None
    if len(base) < 3 or base[1:3] != ":\\" or not base[0].isalpha():
        raise InvalidInputError(f"the share's local path {base!r} is not a drive path like E:\\exports", field="source.share_local_path")
    parts = components(base[3:], "share path") + list(share.parts)
    return base[:3] + "\\".join(parts)


def export(host: HypervHost, vm: VmDescription, share: SmbPath, local: str, session: ExportSession, *,
           timeout: float) -> list[tuple[SmbPath, int]]:  # fmt: skip
    """Export-VM into the run's directory; the VHDX files it wrote, on the share, with their sizes."""
    target = run_directory(share, session.run_id)
    local_target = local + "\\" + "\\".join(target.parts[len(share.parts):])
    session.record(KIND, target.unc, host.login.host)
    try:
        answer = host.run("export_vm", id=vm.id, path=local_target, timeout=timeout)
    except HostError as error:
        if error.out_of_space():
            raise InsufficientSpaceError(
                f"the host ran out of space exporting VM {vm.name!r} to {target.unc} ({error.message}). Free space "
                "on the share's volume (the export needs about the VHDX files' size), or export to another share; "
                "the partial export is removed.",
                field="source.share",
            ) from None
        raise InvalidInputError(f"Export-VM of VM {vm.name!r} to {local_target} failed: {error.message or error.id}") from None
    files = []
    prefix = [p.lower() for p in components(local_target[3:], "export path")]
    for item in parsed(Exported, answer, "Export-VM").files:
        if item.path[:3].lower() != local_target[:3].lower():
            raise UnsafeImageError(f"Export-VM reported {item.path!r}, outside the export directory {local_target}")
        parts = components(item.path[3:], "exported file")
        if [p.lower() for p in parts[: len(prefix)]] != prefix or len(parts) <= len(prefix):
            raise UnsafeImageError(f"Export-VM reported {item.path!r}, outside the export directory {local_target}")
        files.append((target.child(*parts[len(prefix):]), item.size))
    return files
