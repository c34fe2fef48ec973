"""pyVmomi's faults as hyperexport's errors: what a retry can fix is retried, the rest is not."""

from __future__ import annotations

from hyperexport.errors import AccessDeniedError, TransferError
from hyperexport.providers.vsphere.errors import fault_error


def test_an_expired_session_is_retried_not_refused():
    from pyVmomi import vim

    error = fault_error(vim.fault.NotAuthenticated(), "reading the disks of VM vm-42")
    assert isinstance(error, TransferError) and error.retryable
    assert str(error) == "vSphere ended the session while reading the disks of VM vm-42; will retry with a new login"


def test_a_missing_privilege_is_not_retried():
    from pyVmomi import vim

    error = fault_error(vim.fault.NoPermission(privilegeId="Datastore.Browse"), "reading a disk")
    assert isinstance(error, AccessDeniedError) and not error.retryable and error.field == "credentials_block"
    assert "the user lacks the privilege Datastore.Browse" in str(error)
