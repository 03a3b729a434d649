from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import machine
from ccapi_suno_mcp.sandbox import SandboxStats
from postgres import PostgresCluster, survivors
from stores import Store

_FIGURES_KEY = pytest.StashKey["Figures"]()
# The headline figures of the reliability suite, printed first and always (even when zero).
HEADLINE_FIGURES = ("faults injected", "submits counted", "inputs fuzzed", "canary hits")


class Figures:
    """Counts the reliability suite adds up across the run; printed at the end by `pytest_terminal_summary`."""

    def __init__(self) -> None:
        self.totals: dict[str, int] = {}

    def add(self, name: str, amount: int) -> None:
        """Add `amount` to the figure `name` and print the part this test contributed."""
        self.totals[name] = self.totals.get(name, 0) + amount
        print(f"RELIABILITY {name}: {amount}")

    def add_sandbox(self, stats: SandboxStats) -> None:
        """Add what a sandbox counted: the faults it injected and the submits it received."""
        self.add("faults injected", stats.faults_injected)
        self.add("submits counted", stats.submits)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One throwaway PostgreSQL server for the whole session, started by the first test that needs it."""
    cluster = PostgresCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """The URL of a new, empty database on the session's PostgreSQL server."""
    return postgres_cluster.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """Every ledger test runs on both backends: the SQLite file and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return Store("sqlite", str(tmp_path / "home" / "ledger.sqlite3"))
    return Store("postgresql", request.getfixturevalue("postgres_url"))


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    return request.config.stash[_FIGURES_KEY]


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_FIGURES_KEY] = Figures()


def _needs_of(item: pytest.Item) -> set[str]:
    if not isinstance(item, pytest.Function) or item.module is None:
        return set()
    needs = machine.needs_of_module(item.module)
    store = item.callspec.params.get("store") if hasattr(item, "callspec") else None
    if machine.POSTGRES_FIXTURES & set(item.fixturenames) or store == "postgresql":
        needs.add("postgresql")
    return needs


def pytest_collection_finish(session: pytest.Session) -> None:
    """Before the first test: install what the collected tests need from the machine, or stop with one line."""
    if session.config.option.collectonly:
        return
    needs = set[str]().union(*(_needs_of(item) for item in session.items))
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    problem = machine.provide(
        [machine.NEEDS[key] for key in sorted(needs)],
        machine.Provider.of_this_machine(),
        say=lambda line: reporter.write_line(line) if reporter else None,
    )
    if problem is not None:
        pytest.exit(problem, returncode=pytest.ExitCode.USAGE_ERROR)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A PostgreSQL server a test started and that still runs fails the run (its watchdog stops it later)."""
    left = survivors()
    if left:
        sys.stderr.write(f"\nPostgreSQL servers still running after the session: {', '.join(left)}\n")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    totals = config.stash[_FIGURES_KEY].totals
    if not totals:
        return
    terminalreporter.section("reliability figures")
    names = [*(name for name in HEADLINE_FIGURES if name in totals), *sorted(set(totals) - set(HEADLINE_FIGURES))]
    for name in names:
        terminalreporter.write_line(f"RELIABILITY {name}: {totals[name]}")
