from .migrate_vm import migrate_vm

__all__ = ["migrate_vm"]
