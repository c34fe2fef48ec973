"""Remove what one run left on the host, and nothing else: its checkpoint (named hyperexport-RUN_ID) and its
export directory (SHARE\\hyperexport\\RUN_ID). Whatever cannot be removed is named in one error."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ...errors import HyperExportError, SourceNotFoundError, TransferError
from ...models import Resource
from . import checkpoint as hv_checkpoint, exported as hv_exported
from .powershell import HypervHost
from .smb import SmbPath, SmbShare

log = logging.getLogger(__name__)


def remove(host: HypervHost, run_id: str, resources: Sequence[Resource]) -> list[Resource]:
    removed: list[Resource] = []
    failed: list[str] = []
    smb = SmbShare(host.login)
    try:
        for resource in resources:
            try:
                if resource.kind == hv_checkpoint.KIND and resource.location:
                    hv_checkpoint.remove(host, run_id, resource.location, resource.id)
                elif resource.kind == hv_exported.KIND:
                    path = SmbPath.from_unc(resource.id, "export directory")
                    if not hv_exported.is_run_directory(path, run_id):
                        log.warning("not removing %s: it is not the export directory of run %s", resource.id, run_id)
                        continue
                    smb.remove_tree(path)
                else:
                    log.warning("%s is nothing the hyperv provider creates: left alone", resource)
                    continue
            except SourceNotFoundError:
                pass  # already gone
            except HyperExportError as error:
                log.warning("clean-up of %s failed: %s", resource, error)
                failed.append(f"{resource} ({error})")
                continue
            removed.append(resource)
    finally:
        smb.close()
    if failed:
        raise TransferError(
            f"could not remove {len(failed)} resource(s) created by run {run_id}: {'; '.join(failed)}. Run the clean-up "
            f"again, or remove them on the host: checkpoint {hv_checkpoint.checkpoint_name(run_id)} "
            "(Remove-VMCheckpoint), directory hyperexport\\" + run_id + " of the export share."
        )
    return removed


def run_resources(host: HypervHost, run_id: str, share: SmbPath | None) -> list[Resource]:
    found = [Resource(kind=hv_checkpoint.KIND, id=name, location=vm) for vm, name in hv_checkpoint.find(host, run_id)]
    if share is not None:
        directory = hv_exported.run_directory(share, run_id)
        smb = SmbShare(host.login)
        try:
            if smb.exists(directory):
                found.append(Resource(kind=hv_exported.KIND, id=directory.unc, location=host.login.host))
        finally:
            smb.close()
    return found
