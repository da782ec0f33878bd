"""Embedded default provider: a SQLite message store and a local HTTP server."""
