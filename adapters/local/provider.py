"""The embedded local provider's registration (see ``adapters.registry``): SQLite, no platform
events, not deployed; in the mesh it is ``runtime.local``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from adapters.registry import ProviderSpec
from core.errors import ConfigurationError

if TYPE_CHECKING:
    from core.ports import MessageStore

SPEC = ProviderSpec(
    name="local",
    vendor_modules=(),
    handler="handlers.local",
    store_class="adapters.local.store:SqliteMessageStore",
    store_scheme="sqlite",
    store_opener="adapters.local.provider:open_store",
    cloud="runtime.local:LocalCloud",
    address="127.0.0.5",
    colour="#7f7f7f",
    deployed=False,
)


def open_store(target: str, query: Mapping[str, str]) -> MessageStore:
    """``sqlite:///abs/path.sqlite`` or ``sqlite:relative/path.sqlite``: an existing file only."""
    from adapters.local.store import SqliteMessageStore

    path = Path(target)
    if not path.is_file():
        raise ConfigurationError(f"no SQLite database at {path}")
    return SqliteMessageStore(path)
