"""Fixtures of the orchestration tests live in tests/conftest.py (``stack``, ``disk_server``), shared with tests/aws."""
