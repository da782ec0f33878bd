"""The readiness check as a test target:

    pytest tests/readiness --provider openwhisk      # or: make ready PROVIDER=openwhisk

``--provider`` may repeat; without it (the whole suite) the providers built with the scaffold are
checked. The option is registered here, so pass it with this folder on the command line.
"""

from __future__ import annotations

import pytest

from adapters.registry import providers

#: Providers added with tools.provider: their whole readiness report must be green in CI.
SCAFFOLDED_PROVIDERS = ["openwhisk"]
#: Every deployed provider in the registry (adapters/<name>/provider.py): green in CI too, with
#: the slow checks left out (tests/contract runs every store, tests/packaging packages each one).
REGISTERED_PROVIDERS = [name for name, spec in providers().items() if spec.deployed]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--provider",
        action="append",
        default=[],
        help="provider whose readiness to check (python -m tools.provider check NAME); may repeat",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "provider" in metafunc.fixturenames:
        try:
            chosen = metafunc.config.getoption("--provider")
        except ValueError:  # the option is only registered when this folder is named on the command line
            chosen = []
        metafunc.parametrize("provider", chosen or SCAFFOLDED_PROVIDERS)
    if "registered" in metafunc.fixturenames:
        metafunc.parametrize("registered", REGISTERED_PROVIDERS)
