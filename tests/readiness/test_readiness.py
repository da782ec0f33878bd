"""Readiness reports: green for a finished provider, and naming every missing piece of a fresh scaffold.

The made-up provider is scaffolded in a throw-away copy of the repository: the real tree is
never written to (asserted below).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.provider import ScaffoldError, check_provider, scaffold, validate_name
from tools.provider.readiness import ALL_CHECKS, ReadinessReport, repo_copy
from tools.provider.scaffold import MARKER, REPO_ROOT, planned_files

MADE_UP = "acme"


def test_provider_is_ready(provider: str) -> None:
    report = check_provider(provider)
    print(report.render())
    assert [c.name for c in report.checks] == list(ALL_CHECKS)
    assert report.ok, "\n" + report.render()


def test_every_registered_provider_is_ready(registered: str) -> None:
    """Every check but the two slow ones, which run elsewhere for every provider anyway:
    conformance (tests/contract) and packaging (tests/packaging)."""
    report = check_provider(registered, skip=["conformance", "packaging"])
    print(report.render())
    assert [c.name for c in report.checks] == [c for c in ALL_CHECKS if c not in ("conformance", "packaging")]
    assert report.ok, "\n" + report.render()


@pytest.fixture(scope="module")
def made_up() -> Iterator[tuple[Path, ReadinessReport]]:
    assert not (REPO_ROOT / "adapters" / MADE_UP).exists(), "a provider named acme exists in the real tree"
    with repo_copy() as copy:
        scaffold(MADE_UP, copy)
        yield copy, check_provider(MADE_UP, copy)
    for rel in planned_files(MADE_UP):
        assert not (REPO_ROOT / rel).exists(), f"the scaffold leaked {rel} into the real tree"


def test_made_up_provider_is_not_ready_and_every_check_but_files_and_handler_fails(
    made_up: tuple[Path, ReadinessReport],
) -> None:
    _, report = made_up
    print(report.render())
    assert not report.ok
    failing = {c.name for c in report.checks if not c.ok}
    assert failing == set(ALL_CHECKS) - {"files", "handler"}
    # The handler imports fine and pulls in no other vendor's SDK (the scaffold's own promise).
    assert report.check("handler").ok and report.check("files").ok


def test_report_names_every_todo_in_every_scaffolded_file(made_up: tuple[Path, ReadinessReport]) -> None:
    copy, report = made_up
    todos = report.check("todos").missing
    with_todos = set()
    for rel in planned_files(MADE_UP):
        count = sum(MARKER in line for line in (copy / rel).read_text().splitlines())
        assert sum(item.startswith(f"{rel}:") for item in todos) == count, rel
        if count:
            with_todos.add(rel)
    # Everything but the package marker and the one-line conformance subclass has work left.
    assert with_todos == set(planned_files(MADE_UP)) - {
        "adapters/acme/__init__.py",
        "tests/contract/test_acme_store.py",
    }


def test_report_names_the_shared_registrations(made_up: tuple[Path, ReadinessReport]) -> None:
    _, report = made_up
    extra = " ".join(report.check("extra").missing)
    assert "no `acme` extra" in extra
    assert 'VENDOR_MODULES has no "acme" entry' in report.check("isolation").missing[0]
    replication = " ".join(report.check("replication").missing)
    assert "tools/replication/stores.py registers no store of adapters.acme" in replication
    assert "runtime/acme.py does not exist" in replication


def test_report_names_each_unrecorded_event_shape(made_up: tuple[Path, ReadinessReport]) -> None:
    _, report = made_up
    events = report.check("events").missing
    assert any("tests/events/acme/http_<case>.json" in e and "to_request" in e for e in events)
    assert any("tests/events/acme/changes_<case>.json" in e and "to_messages" in e for e in events)


def test_event_mapping_todos_are_named_once_payloads_are_recorded(tmp_path: Path) -> None:
    with repo_copy() as copy:
        scaffold(MADE_UP, copy)
        folder = copy / "tests" / "events" / MADE_UP
        (folder / "http_get_health.json").write_text('{"method": "GET", "path": "/health"}')
        (folder / "changes_one.json").write_text('{"records": []}')
        report = check_provider(MADE_UP, copy, skip=[c for c in ALL_CHECKS if c != "events"])
    events = report.check("events").missing
    assert any(e.startswith("tests/events/acme/http_get_health.json: to_request is not implemented") for e in events)
    assert any(e.startswith("tests/events/acme/http_get_health.json: to_response is not implemented") for e in events)
    assert any(e.startswith("tests/events/acme/changes_one.json: to_messages is not implemented") for e in events)


def test_report_lists_every_failing_conformance_case_by_name(made_up: tuple[Path, ReadinessReport]) -> None:
    _, report = made_up
    conformance = report.check("conformance")
    from tests.contract.store_suite import MessageStoreConformance

    cases = [n for n in dir(MessageStoreConformance) if n.startswith("test_")]
    for case in cases:
        assert any(item.split(": ", 1)[1].startswith(case) for item in conformance.missing if ": " in item), case
    # Every collected case (parametrized ones included) fails for the one cause.
    collected = [item for item in conformance.missing if item.startswith(("error: ", "failed: "))]
    assert f"cause ({len(collected)} cases): fixture 'acme_client' not found" in conformance.missing
    assert any("tests/conftest.py pytest_plugins" in item for item in conformance.missing)


def test_report_names_the_packaging_failure(made_up: tuple[Path, ReadinessReport]) -> None:
    _, report = made_up
    packaging = report.check("packaging")
    assert not packaging.ok
    assert packaging.missing and all(item.startswith("sls package") for item in packaging.missing)


def test_cli_try_prints_the_report_and_exits_1() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tools.provider", "try", MADE_UP, "--skip", "conformance,packaging"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Manual steps" in proc.stdout and "NOT READY" in proc.stdout
    assert "\u2718 extra" in proc.stdout and "\u2714 files" in proc.stdout
    assert not (REPO_ROOT / "adapters" / MADE_UP).exists()


@pytest.mark.parametrize("name", ["", "a", "Acme", "1cloud", "ac-me", "ac_me", "core", "tests", "class", "x" * 21])
def test_invalid_names_are_refused(name: str) -> None:
    with pytest.raises(ScaffoldError):
        validate_name(name, REPO_ROOT)


@pytest.mark.parametrize("name", ["aws", "azure", "gcp"])
def test_existing_providers_are_refused(name: str) -> None:
    with pytest.raises(ScaffoldError, match="already exists"):
        validate_name(name, REPO_ROOT)


def test_scaffold_refuses_to_overwrite_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "acme.md").write_text("mine")
    with pytest.raises(ScaffoldError, match=r"docs/acme\.md"):
        scaffold(MADE_UP, tmp_path)
    assert (tmp_path / "docs" / "acme.md").read_text() == "mine"
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["docs", "docs/acme.md"]


def test_scaffolded_python_is_lint_clean() -> None:
    with repo_copy() as copy:
        written = scaffold(MADE_UP, copy)
        sources = [str(p.relative_to(copy)) for p in written.files if p.suffix == ".py"]
        for command in (["check"], ["format", "--check"]):
            proc = subprocess.run(
                [sys.executable, "-m", "ruff", *command, "--no-cache", *sources],
                cwd=copy,
                capture_output=True,
                text=True,
                check=False,
            )
            assert proc.returncode == 0, proc.stdout + proc.stderr
