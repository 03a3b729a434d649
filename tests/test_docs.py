"""Docs that cannot drift: the README and the documentation site agree with the code, and the site builds."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from ccapi_suno_mcp.app import create_server
from ccapi_suno_mcp.catalogue import ACTIONS
from ccapi_suno_mcp.settings import ENVIRONMENT, Settings

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text(encoding="utf-8")
GUARANTEES = (DOCS / "guarantees.md").read_text(encoding="utf-8")
README_LIMIT = 12_000
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}


def _reference() -> ModuleType:
    """docs/hooks/reference.py, the generator of the reference pages (an MkDocs hook, not a package module)."""
    spec = importlib.util.spec_from_file_location("docs_reference", DOCS / "hooks" / "reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REFERENCE = _reference()


def _section(text: str, heading: str) -> str:
    return text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]


async def _served(home: Path) -> set[str]:
    return {tool.name for tool in await create_server(Settings(home=home)).list_tools()}


# --- the README ---------------------------------------------------------------------------------------------


def test_the_readme_is_short() -> None:
    assert len(README) <= README_LIMIT


def test_the_readme_names_the_run_and_test_commands() -> None:
    assert re.search(r"^uv run ccapi-suno-mcp --sandbox", README, re.MULTILINE)
    assert re.search(r"^uv run pytest", README, re.MULTILINE)


@pytest.mark.anyio
async def test_the_readme_tools_at_a_glance_name_exactly_the_served_tools_by_toolset(tmp_path: Path) -> None:
    rows = [line.strip("|").split("|") for line in _section(README, "## Tools at a glance").splitlines()]
    groups = {cells[0].strip(): set(re.findall(r"`(suno_\w+)`", cells[1])) for cells in rows if len(cells) == 2}
    assert set().union(*groups.values()) == await _served(tmp_path)
    for spec in ACTIONS:
        if spec.enabled:
            assert spec.tool in groups[spec.toolset], spec.tool


def test_every_relative_link_in_the_readme_names_a_file_that_exists() -> None:
    links = re.findall(r"\]\((?!https?://)([^)#]+)(?:#[^)]*)?\)", README)
    assert len(links) >= 10
    for link in links:
        assert (ROOT / link).exists(), link


# --- the generated reference pages --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_tool_reference_lists_every_served_tool_with_its_limits_and_cost(tmp_path: Path) -> None:
    page: str = REFERENCE.tools_page()
    assert set(re.findall(r"^## `(suno_\w+)`", page, re.MULTILINE)) == await _served(tmp_path)
    assert "**29 tools**" in page
    wait = page.split("## `suno_wait_for_tasks`", 1)[1].split("\n## ", 1)[0]
    assert "| `timeout_seconds` | integer |  | 1 to 600; default `50` |" in wait
    assert "| `task_ids` | array of string | yes | 1–100 items;" in wait
    generate = page.split("## `suno_generate_music`", 1)[1].split("\n## ", 1)[0]
    assert "Billable, about 15 credits upstream; toolset `create`; CCAPI action `MUSIC` (inferred)" in generate
    assert "| `description` | string |  | 1–400 characters |" in generate
    assert "Returns (`structuredContent`, with the same facts as text): `task_id` (string or null)" in generate


def test_the_environment_reference_documents_every_variable() -> None:
    page: str = REFERENCE.environment_page()
    assert re.findall(r"^\| `([A-Z_]+)` \|", page, re.MULTILINE) == list(ENVIRONMENT)


def test_the_reference_pages_in_git_are_what_the_code_generates() -> None:
    assert REFERENCE.stale_pages() == [], "run scripts/snapshot-tools and commit docs/reference/"


# --- the site -----------------------------------------------------------------------------------------------


def _build(root: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """`mkdocs build --strict` of the site in `root`, with every proxy pointed at a closed port (no network)."""
    dead = "http://127.0.0.1:9"
    env = os.environ | {"HTTP_PROXY": dead, "HTTPS_PROXY": dead, "http_proxy": dead, "https_proxy": dead}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=root, env=env | {"NO_MKDOCS_2_WARNING": "1"}, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def test_the_site_builds_strictly_and_offline_with_the_generated_reference(tmp_path: Path) -> None:
    built = _build(ROOT, tmp_path / "site")
    assert built.returncode == 0, built.stderr
    tools = (tmp_path / "site" / "reference" / "tools" / "index.html").read_text(encoding="utf-8")
    assert 'id="suno_wait_for_tasks"' in tools
    codex = (tmp_path / "site" / "clients" / "codex" / "index.html").read_text(encoding="utf-8")
    assert "startup_timeout_sec" in codex  # the snippet, included from manifests/clients/ as it is


def test_a_broken_internal_link_fails_the_site_build(tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(DOCS, copy / "docs", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "manifests" / "clients", copy / "manifests" / "clients")
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    page = copy / "docs" / "spend.md"
    page.write_text(page.read_text(encoding="utf-8") + "\nSee [the missing page](no-such-page.md).\n", encoding="utf-8")
    built = _build(copy, tmp_path / "site")
    assert built.returncode != 0
    assert "no-such-page.md" in built.stderr


# --- the guarantees page ------------------------------------------------------------------------------------


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
