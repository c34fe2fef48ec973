"""Sources of VMs: one package per provider, each a ``Provider`` (contract.py) listed in registry.py.

What every provider needs lives here once: the contract, the export session and its ledger (session.py),
roll-back and clean-up (lifecycle.py), and polling (polling.py).
"""
