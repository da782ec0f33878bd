"""Operator and local tooling (not deployed): replication verify/repair, and friends."""
