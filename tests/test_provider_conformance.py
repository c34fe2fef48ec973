"""Every registered provider runs the conformance suite (tests/support/conformance.py) somewhere in tests/."""

from __future__ import annotations

import re
from pathlib import Path

from hyperexport.providers.registry import registered_names

TESTS = Path(__file__).parent


def test_every_registered_provider_has_a_conformance_suite():
    suites = {}
    for path in TESTS.rglob("test_*.py"):
        text = path.read_text()
        if "(ProviderConformance):" in text:
            for name in re.findall(r'provider_name = "([a-z0-9]+)"', text):
                suites[name] = path
    missing = sorted(set(registered_names()) - set(suites))
    assert missing == [], f"providers without a ProviderConformance subclass in tests/: {missing}"
