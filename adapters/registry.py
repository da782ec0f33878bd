"""The provider registry: every place Overcast finds a provider from, as dotted names (libcloud style).

Each provider package exports one ``ProviderSpec`` as ``SPEC`` in ``adapters/<name>/provider.py``,
a module that imports no vendor SDK, so reading the registry is cheap and loads nothing a
deployment does not carry. Every list that used to name the providers one by one is derived
from it: the store openers of ``tools.replication.stores``, the mesh's cloud kinds, the isolation
test's vendor modules, the test fixture plugins, the packaged providers and the drill's colours.

Specs are found two ways, merged by name:

* the ``overcast.providers`` entry points (``pyproject.toml``), so an installed distribution
  can bring a provider of its own;
* a scan of the ``adapters`` package this module belongs to (``adapters/*/provider.py``), so a
  copy of the tree (the readiness check's ``--root``) sees its own providers even when the
  installed metadata lists another tree's, or none at all.

For a provider inside this package the scan decides: its entry point line documents it (and is
what an installed distribution publishes), and an entry point into this package that the scan
does not find belongs to another tree and is ignored. Entry points into other packages add
providers that live outside the tree.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

ENTRY_POINT_GROUP = "overcast.providers"
DEFAULT_COLOUR = "#9467bd"


@dataclass(frozen=True)
class ProviderSpec:
    """One provider, by name. Every ``module:attr`` string is imported only when asked for."""

    name: str
    #: Top-level modules of the vendor SDK: no other provider's handler may import them.
    vendor_modules: tuple[str, ...]
    #: The composition root (``handlers.<name>``): ``http``, ``changes``, ``anti_entropy``.
    handler: str
    #: The store: its class, the scheme of its spec string and the opener that builds one from it
    #: (``opener(target, query) -> MessageStore``; ``tools.replication.stores.open_store``).
    store_class: str
    store_scheme: str
    store_opener: str
    #: The event adapter module (``adapters.<name>.events``, see ``adapters.protocols``); empty
    #: for a provider with no platform events (the embedded local server).
    events: str = ""
    #: The local stand-in as a ``runtime.mesh.Cloud`` subclass and the loopback address it serves on.
    cloud: str = ""
    address: str = ""
    #: The store's emulator launcher (``emulators.<x>:<Class>``), when it has one.
    emulator: str = ""
    #: pytest plugin modules with the emulator's session fixtures.
    fixtures: tuple[str, ...] = ()
    #: Colour of the provider in the drill's timeline picture.
    colour: str = DEFAULT_COLOUR
    #: Whether ``serverless.<name>.yml`` deploys it (the embedded local provider is not deployed).
    deployed: bool = True


def load(dotted: str) -> Any:
    """``"package.module:attr"`` → the attribute; ``"package.module"`` → the module."""
    module, _, attr = dotted.partition(":")
    imported = importlib.import_module(module)
    return getattr(imported, attr) if attr else imported


@cache
def providers() -> dict[str, ProviderSpec]:
    """Every registered provider by name, in name order."""
    found: dict[str, ProviderSpec] = {}
    scanned = _scanned_modules()
    # An entry point into this package that the scan did not find names a provider of another
    # tree (the editable install's metadata seen from a copy): this tree does not have it.
    others = [m for m in _entry_point_modules() if m not in scanned and not m.startswith(f"{__package__}.")]
    for module in scanned + others:
        spec = load(module)
        if not isinstance(spec, ProviderSpec):
            raise TypeError(f"{module} is a {type(spec).__name__}, not a ProviderSpec")
        found.setdefault(spec.name, spec)
    return dict(sorted(found.items()))


def provider(name: str) -> ProviderSpec:
    try:
        return providers()[name]
    except KeyError:
        raise KeyError(f"no provider {name!r} (registered: {', '.join(providers())})") from None


def _scanned_modules() -> list[str]:
    here = Path(__file__).resolve().parent
    return [f"adapters.{path.parent.name}.provider:SPEC" for path in sorted(here.glob("*/provider.py"))]


def _entry_point_modules() -> list[str]:
    try:
        entries = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception:  # broken or absent metadata: the scan above still finds the tree's own
        return []
    return [entry.value for entry in sorted(entries, key=lambda e: e.name)]


def is_loopback(url_or_host: str) -> bool:
    """Whether a URL or ``host:port`` names a 127.x address (a local emulator)."""
    from urllib.parse import urlsplit

    host = urlsplit(url_or_host).hostname if "://" in url_or_host else url_or_host.rsplit(":", 1)[0]
    return bool(host) and (host or "").startswith("127.")
