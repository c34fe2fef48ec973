"""Sources of VMs: one module per provider, all of the same shape (see base.py)."""
