"""Docs that cannot drift: the README's tables and commands agree with the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ccapi_suno_mcp.app import create_server
from ccapi_suno_mcp.catalogue import ACTIONS
from ccapi_suno_mcp.settings import ENVIRONMENT, Settings

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
GUARANTEES = README.split("## Guarantees", 1)[1].split("\n## ", 1)[0]
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}


def _table_rows(first_header: str) -> list[list[str]]:
    """The rows of every README table whose first column is headed `first_header`."""
    lines = README.splitlines()
    rows: list[list[str]] = []
    for start, header in enumerate(lines):
        if not header.startswith(f"| {first_header} |"):
            continue
        for line in lines[start + 2 :]:
            if not line.startswith("|"):
                break
            rows.append([cell.strip().strip("`") for cell in line.strip("|").split("|")])
    return rows


@pytest.mark.anyio
async def test_the_readme_tool_tables_list_exactly_the_served_tools(tmp_path: Path) -> None:
    served = {tool.name for tool in await create_server(Settings(home=tmp_path)).list_tools()}
    documented = {row[0] for row in _table_rows("Tool")}
    assert documented == served


def test_the_readme_action_table_matches_the_catalogue() -> None:
    rows = {row[0]: row for row in _table_rows("Tool") if len(row) == 5}
    for spec in ACTIONS:
        if spec.enabled:
            assert rows[spec.tool][2:] == [spec.action, "confirmed" if spec.confirmed else "inferred", spec.toolset]


def test_the_readme_documents_every_environment_variable() -> None:
    documented = {row[0] for row in _table_rows("Variable")}
    assert documented == set(ENVIRONMENT)


def test_the_readme_names_the_run_and_test_commands() -> None:
    assert re.search(r"^uv run ccapi-suno-mcp --sandbox", README, re.MULTILINE)
    assert re.search(r"^uv run pytest", README, re.MULTILINE)


def test_every_test_named_in_the_guarantees_exists() -> None:
    named = re.findall(r"`(test_[a-z_]+\.py)(?:::(test_[a-z0-9_]+))?`", GUARANTEES)
    assert len(named) >= 13
    tests_dir = Path(__file__).parent
    for file, test in named:
        source = (tests_dir / file).read_text(encoding="utf-8")
        if test:
            assert re.search(rf"^(async )?def {test}\(", source, re.MULTILINE), f"{file}::{test}"


def test_the_test_counts_the_guarantees_state_are_the_collected_counts() -> None:
    stated = {
        file: int(count) if count.isdigit() else NUMBER_WORDS[count]
        for file, count in re.findall(r"`(test_[a-z_]+\.py)` \((\w+) tests\b", GUARANTEES)
    }
    assert set(stated) == {"test_reliability_secrets.py", "test_reliability_downloads.py"}
    tests_dir = Path(__file__).parent
    listed = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *sorted(stated)],
        cwd=tests_dir, capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    files = [Path(line.split("::", 1)[0]).name for line in listed.splitlines() if "::" in line]
    collected = {file: files.count(file) for file in stated}
    assert collected == stated
