"""Shared fixtures. One fixture module per emulator lives in tests/fixtures/ and is listed here;
each starts its server once per session (bound to 127.0.0.1) and stops it even on failure."""

pytest_plugins: list[str] = [
    # one line per emulator fixture module, e.g. "tests.fixtures.moto",
    "tests.fixtures.firestore",
    "tests.fixtures.cosmos",
    "tests.fixtures.dynamodb",
    "tests.fixtures.failover",
    "tests.fixtures.pouchdb",
]
