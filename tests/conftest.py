"""Shared fixtures. One fixture module per emulator lives in tests/fixtures/, named by its
provider's spec; each starts its server once per session (bound to 127.0.0.1) and stops it even
on failure."""

import os

from adapters.registry import providers

# Tests that are not about authentication post and delete without tokens: they run with auth
# explicitly disabled (subprocess runtimes inherit it). Tests of auth set OVERCAST_AUTH_* themselves
# (tests/fixtures/oidc.py: a real issuer on 127.0.0.1).
os.environ.setdefault("OVERCAST_AUTH_DISABLED", "true")

#: The shared fixture modules, then each provider's emulator fixtures (``fixtures`` of its spec in
#: adapters/<name>/provider.py): a new provider registers its own, nothing is added here.
pytest_plugins: list[str] = [
    "tests.fixtures.oidc",
    "tests.fixtures.failover",
    *dict.fromkeys(module for spec in providers().values() for module in spec.fixtures),
]
