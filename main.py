"""Cloud Functions' Python runtime loads main.py: the entrypoints live in handlers/gcp.py."""

from handlers.gcp import anti_entropy, changes, http

__all__ = ["anti_entropy", "changes", "http"]
