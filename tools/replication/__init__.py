"""Replication tooling for operators: verify that stores hold identical content, and run
anti-entropy by hand. ``python -m tools.replication --help``."""
