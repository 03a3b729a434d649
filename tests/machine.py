"""What the tests need from the machine beyond Python and uv, and getting it there.

Some tests build the song player (Node.js and npm), drive it in Chromium, or start a throwaway PostgreSQL server.
`uv run pytest` works out which of these the collected tests need (conftest.py), finds the ones already installed,
and, as root on Debian, installs the rest with apt-get before the first test runs. Anywhere else it stops at once
with one line that says what to install. `.ci/run` calls `python tests/machine.py node` for its own npm steps.

A test module declares a need with a module-level `NEEDS = ("node", ...)`, or by importing from a helper that
declares one (player_build, player_host, postgres, tagreader); a test that uses the PostgreSQL fixtures needs
PostgreSQL.
"""

from __future__ import annotations

import glob
import inspect
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

__all__ = ["NEEDS", "Need", "Provider", "missing", "needs_of_module", "one_line", "provide"]

CHROMIUM = "/usr/bin/chromium"  # where Debian puts it; Playwright drives it and never downloads a browser
APT_TIMEOUT_SECONDS = 900
POSTGRES_FIXTURES = frozenset({"postgres_cluster", "postgres_url"})


def _postgres_present() -> bool:
    binaries = ("initdb", "pg_ctl")
    if all(shutil.which(name) for name in binaries):
        return True
    return any(
        all(Path(folder, name).is_file() for name in binaries) for folder in glob.glob("/usr/lib/postgresql/*/bin")
    )


@dataclass(frozen=True)
class Need:
    """Something installed on the machine: how to tell it is there, and its Debian packages."""

    key: str
    label: str
    apt_packages: tuple[str, ...]
    present: Callable[[], bool]


NEEDS: Mapping[str, Need] = {
    need.key: need
    for need in (
        Need("node", "Node.js 20+ with npm", ("nodejs", "npm"), lambda: all(map(shutil.which, ("node", "npm", "npx")))),
        Need("chromium", f"Chromium at {CHROMIUM}", ("chromium",), lambda: Path(CHROMIUM).is_file()),
        Need("postgresql", "PostgreSQL's server programs (initdb, pg_ctl)", ("postgresql",), _postgres_present),
        Need(
            "exiftool",
            "exiftool (an independent tag reader)",
            ("libimage-exiftool-perl",),
            lambda: bool(shutil.which("exiftool")),
        ),
        Need("ffprobe", "ffprobe (an independent tag reader)", ("ffmpeg",), lambda: bool(shutil.which("ffprobe"))),
        Need("tmux", "tmux (Claude Code's interactive test)", ("tmux",), lambda: bool(shutil.which("tmux"))),
    )
}


def needs_of_module(module: ModuleType) -> set[str]:
    """What a test module needs: its own `NEEDS`, and that of every helper module it took names from."""
    found: set[str] = set(getattr(module, "NEEDS", ()))
    for value in vars(module).values():
        source = value if isinstance(value, ModuleType) else inspect.getmodule(value)
        if source is not None and source is not module and source.__name__ in _HELPERS:
            found |= set(getattr(source, "NEEDS", ()))
    return found


_HELPERS = frozenset({"player_build", "player_host", "postgres", "tagreader"})


def missing(needs: Iterable[Need]) -> list[Need]:
    """The needs that this machine does not have, each once, in the order given."""
    return [need for need in dict.fromkeys(needs) if not need.present()]


def one_line(absent: list[Need], *, apt: bool) -> str:
    """The one line that says what to install."""
    labels = ", ".join(need.label for need in absent)
    if apt:
        packages = " ".join(package for need in absent for package in need.apt_packages)
        how = f"sudo apt-get install -y {packages}"
    else:
        how = "install them with your system's package manager"
    return f"The tests need {labels}, which this machine lacks: {how} (then run the tests again)."


@dataclass(frozen=True)
class Provider:
    """How this machine installs packages: whether we may, and the command that does it."""

    is_root: bool
    apt_get: str | None
    run: Callable[[list[str]], subprocess.CompletedProcess[str]]

    @classmethod
    def of_this_machine(cls) -> Provider:
        def run(command: list[str]) -> subprocess.CompletedProcess[str]:
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            return subprocess.run(command, capture_output=True, text=True, env=env, timeout=APT_TIMEOUT_SECONDS)

        return cls(is_root=os.geteuid() == 0, apt_get=shutil.which("apt-get"), run=run)


def provide(needs: Iterable[Need], provider: Provider, *, say: Callable[[str], None]) -> str | None:
    """Make sure the machine has `needs`: install what is missing where we can. None when all is there, else the
    one line that says what to install."""
    absent = missing(needs)
    if not absent:
        return None
    if provider.apt_get is None or not provider.is_root:
        return one_line(absent, apt=provider.apt_get is not None)
    packages = [package for need in absent for package in need.apt_packages]
    say(f"Installing what the tests need with apt-get: {' '.join(packages)}")
    for command in ([provider.apt_get, "update", "-qq"], [provider.apt_get, "install", "-y", "-qq", *packages]):
        done = provider.run(command)
        if done.returncode != 0:
            tail = " ".join((done.stderr or done.stdout).split())[-300:]
            return f"{' '.join(command[:2])} failed ({tail}): {one_line(absent, apt=True)}"
    still = missing(absent)
    return one_line(still, apt=True) if still else None


def main(arguments: list[str]) -> int:
    """`python tests/machine.py node chromium postgresql`: provide these, or print what to install."""
    unknown = set(arguments) - set(NEEDS)
    if unknown:
        print(f"unknown needs {sorted(unknown)}; known: {', '.join(NEEDS)}", file=sys.stderr)
        return 2
    wanted = [NEEDS[key] for key in arguments or NEEDS]
    problem = provide(wanted, Provider.of_this_machine(), say=lambda line: print(line, file=sys.stderr))
    if problem is not None:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
