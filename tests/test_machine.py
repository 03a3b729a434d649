"""The test command on a fresh machine: what the tests need is found, installed as root, or named in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import machine
import test_bundle
import test_player_browser
import test_team_isolation
from machine import Need, Provider

HERE = Path(__file__).parent


class Machine:
    """A machine's packages as apt-get changes them: each install makes its packages present."""

    def __init__(self, installed: set[str], *, broken: bool = False) -> None:
        self.installed = installed
        self.broken = broken
        self.commands: list[list[str]] = []

    def need(self, key: str, *packages: str) -> Need:
        return Need(key, f"the {key}", packages, lambda: set(packages) <= self.installed)

    def run(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        self.commands.append(command)
        if command[1] == "install" and not self.broken:
            self.installed |= {word for word in command[2:] if not word.startswith("-")}
        return subprocess.CompletedProcess(command, 0, "", "")


def test_as_root_on_debian_what_is_missing_is_installed_with_one_apt_get_and_nothing_else() -> None:
    box = Machine({"chromium"})
    needs = [box.need("node", "nodejs", "npm"), box.need("chromium", "chromium"), box.need("pg", "postgresql")]
    said: list[str] = []
    problem = machine.provide(needs, Provider(is_root=True, apt_get="/usr/bin/apt-get", run=box.run), say=said.append)
    assert problem is None
    assert box.commands == [
        ["/usr/bin/apt-get", "update", "-qq"],
        ["/usr/bin/apt-get", "install", "-y", "-qq", "nodejs", "npm", "postgresql"],
    ]
    assert said == ["Installing what the tests need with apt-get: nodejs npm postgresql"]


def test_a_machine_that_has_everything_runs_no_command() -> None:
    box = Machine({"nodejs", "npm"})
    provider = Provider(is_root=True, apt_get="/usr/bin/apt-get", run=box.run)
    assert machine.provide([box.need("node", "nodejs", "npm")], provider, say=print) is None
    assert box.commands == []


def test_without_root_one_line_says_what_to_install_and_nothing_is_run() -> None:
    box = Machine(set())
    needs = [box.need("browser", "chromium"), box.need("pg", "postgresql")]
    problem = machine.provide(needs, Provider(is_root=False, apt_get="/usr/bin/apt-get", run=box.run), say=print)
    assert problem == (
        "The tests need the browser, the pg, which this machine lacks: sudo apt-get install -y chromium postgresql "
        "(then run the tests again)."
    )
    assert box.commands == []


def test_an_install_that_does_not_provide_the_package_says_what_is_still_missing() -> None:
    box = Machine(set(), broken=True)
    provider = Provider(is_root=True, apt_get="/usr/bin/apt-get", run=box.run)
    problem = machine.provide([box.need("browser", "chromium")], provider, say=print)
    assert problem is not None and "sudo apt-get install -y chromium" in problem
    assert len(box.commands) == 2


def test_the_tests_that_need_node_chromium_or_postgresql_say_so() -> None:
    assert machine.needs_of_module(test_player_browser) == {"node", "chromium"}
    assert machine.needs_of_module(test_bundle) == {"node"}
    assert machine.needs_of_module(test_team_isolation) == {"postgresql"}
    assert machine.needs_of_module(sys.modules[__name__]) == set()


def test_the_command_line_without_a_package_manager_names_what_to_install_in_one_line_on_stderr() -> None:
    done = subprocess.run(
        [sys.executable, str(HERE / "machine.py"), "node"],
        env={"PATH": str(HERE / "no-such-folder")},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "The tests need Node.js 20+ with npm, which this machine lacks: install them with your system's package "
        "manager (then run the tests again).\n"
    )
