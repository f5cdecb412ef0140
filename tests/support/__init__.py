"""Helpers shared by tests (not fixtures): e.g. the TLS-intercepting CONNECT proxy."""
