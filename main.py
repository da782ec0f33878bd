"""Cloud Functions' Python runtime loads main.py: the entrypoints live in handlers/gcp.py."""

from handlers.gcp import anti_entropy, http, on_firestore_event, on_firestore_write

__all__ = ["anti_entropy", "http", "on_firestore_event", "on_firestore_write"]
