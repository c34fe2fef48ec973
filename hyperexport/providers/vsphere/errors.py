"""vSphere faults translated into hyperexport's exception tree, in one place.

    with translated("creating the snapshot of web01"):
        vm.CreateSnapshot_Task(...)

An ended session (NotAuthenticated) is retried with a new login. A missing privilege becomes ``AccessDeniedError`` naming the privilege, a vanished object
``SourceNotFoundError``, a refusal (invalid state, a snapshot vSphere will not take, a file fault)
``InvalidInputError``: all permanent. Communication faults and dropped connections become ``TransferError``
(retried). vSphere's own message is kept, shortened; nothing of the request is quoted.
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ...errors import AccessDeniedError, HyperExportError, InvalidInputError, SourceNotFoundError, TransferError
from .credentials import pyvmomi

_TRANSIENT_FAULTS = ("HostCommunication", "Timedout", "SystemError", "RequestCanceled", "HostNotConnected", "TaskInProgress")


def fault_name(fault: Any) -> str:
    return type(fault).__name__.rsplit(".", 1)[-1]


def fault_message(fault: Any) -> str:
    message = str(getattr(fault, "msg", "") or "").strip()
    for item in getattr(fault, "faultMessage", None) or []:
        message = message or str(getattr(item, "message", "") or "")
    return message[:300]


def fault_error(fault: Any, action: str) -> HyperExportError:
    """The hyperexport error for vSphere fault ``fault`` raised (or a task failed with) while doing ``action``."""
    vim, vmodl = pyvmomi()
    name, message = fault_name(fault), fault_message(fault)
    said = f": {message}" if message else ""
    if isinstance(fault, vim.fault.NotAuthenticated):
        # an expired or dropped session, not a refused login (that is InvalidLogin): the retry logs in anew
        return TransferError(f"vSphere ended the session while {action}; will retry with a new login")
    if isinstance(fault, vim.fault.NoPermission):
        privilege = getattr(fault, "privilegeId", None) or "a privilege"
        target = getattr(getattr(fault, "object", None), "_moId", None)
        on = f" on {target}" if target else ""
        return AccessDeniedError(
            f"vSphere denied {action}: the user lacks the privilege {privilege}{on}. Grant it to the user's role "
            "(on the VM, its datastores and their datacenter), or use a user that has it.",
            field="credentials_block",
        )
    if isinstance(fault, vmodl.fault.ManagedObjectNotFound):
        return SourceNotFoundError(f"the vSphere object was gone while {action} ({name}); it was deleted meanwhile")
    if isinstance(fault, vim.fault.FileNotFound):
        return SourceNotFoundError(f"a datastore file was missing while {action}{said}")
    if name in _TRANSIENT_FAULTS:
        return TransferError(f"vSphere failed {action} ({name}){said}; will retry")
    return InvalidInputError(f"vSphere refused {action} ({name}){said}")


@contextmanager
def translated(action: str) -> Iterator[None]:
    """Run the block; vSphere faults and connection failures leave it as hyperexport errors."""
    _, vmodl = pyvmomi()
    try:
        yield
    except HyperExportError:
        raise
    except vmodl.MethodFault as fault:
        raise fault_error(fault, action) from None
    except (ConnectionError, socket.timeout, http.client.HTTPException, OSError) as error:
        raise TransferError(f"the connection to vSphere failed while {action} ({type(error).__name__}); will retry") from None
