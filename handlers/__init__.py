"""Thin per-provider entrypoints. Each module is its provider's composition root."""
