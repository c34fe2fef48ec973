"""Test helpers shared across suites (fault-injecting HTTP server)."""
