"""The engine is usable without Prefect: importing any of its modules must not import prefect."""

import pkgutil
import subprocess
import sys

import hyperexport


def test_no_engine_module_imports_prefect():
    modules = [m.name for m in pkgutil.walk_packages(hyperexport.__path__, "hyperexport.")]
    assert "hyperexport.transfer" in modules and "hyperexport.providers.local" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "leaked = sorted(m for m in sys.modules if m == 'prefect' or m.startswith('prefect.'))\n"
        "print(','.join(leaked))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "", f"engine modules imported prefect: {proc.stdout[:300]}"
