from .migrate_vm import migrate_vm
from .nightly_migrations import nightly_migrations

__all__ = ["migrate_vm", "nightly_migrations"]
