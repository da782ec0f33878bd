"""Prints how many hostile events each provider's entrypoints answered in this run."""

from __future__ import annotations

from typing import Any

from tests.fuzz.test_entrypoints import COUNTS


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if COUNTS:
        terminalreporter.write_sep("-", "hostile events per provider")
        for target, count in sorted(COUNTS.items()):
            terminalreporter.write_line(f"{target}: {count}")
