"""Shared fixtures. One fixture module per emulator lives in tests/fixtures/ and is listed here;
each starts its server once per session (bound to 127.0.0.1) and stops it even on failure."""

import os

# Tests that are not about authentication post and delete without tokens: they run with auth
# explicitly disabled (subprocess runtimes inherit it). Tests of auth set OVERCAST_AUTH_* themselves
# (tests/fixtures/oidc.py: a real issuer on 127.0.0.1).
os.environ.setdefault("OVERCAST_AUTH_DISABLED", "true")

pytest_plugins: list[str] = [
    "tests.fixtures.oidc",
    # one line per emulator fixture module, e.g. "tests.fixtures.moto",
    "tests.fixtures.firestore",
    "tests.fixtures.cosmos",
    "tests.fixtures.dynamodb",
    "tests.fixtures.failover",
    "tests.fixtures.pouchdb",
]
