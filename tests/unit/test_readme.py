"""The README's promises that code can check: its settings table, and the commands it names."""

import re
from pathlib import Path

from core.settings import markdown_table

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_settings_table_matches_the_code() -> None:
    block = re.search(r"<!-- settings:begin -->\n(.*?)\n<!-- settings:end -->", README, re.S)
    assert block, "README.md lost its settings markers"
    assert block.group(1).strip() == markdown_table().strip(), "regenerate with: python -m core.settings"


def test_make_targets_named_in_the_readme_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z-]+):", makefile, re.M))
    named = set(re.findall(r"`make ([a-z-]+)", README))
    assert named and named <= targets, f"README names missing make targets: {named - targets}"


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in README and "make test" in (ROOT / ".ci" / "run").read_text()
