"""Building the player (and the browser test's host page) from `player/` with its locked npm packages."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLAYER_SOURCE = REPO / "player"
SHIPPED_PLAYER = REPO / "server" / "ccapi_suno_mcp" / "player" / "player.html"
BUILD_TIMEOUT_SECONDS = 300
NEEDS = ("node",)  # what tests using this module need installed (tests/machine.py)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise AssertionError(
            f"{name} is not installed: the player is built with Node.js 20+ and npm (see docs/development.md)."
        )
    return path


def _run(*command: str) -> None:
    done = subprocess.run(command, cwd=PLAYER_SOURCE, capture_output=True, text=True, timeout=BUILD_TIMEOUT_SECONDS)
    assert done.returncode == 0, f"{' '.join(command)} failed in player/:\n{done.stdout}\n{done.stderr}"


def _locked_versions(lock_file: Path) -> dict[str, str]:
    packages: dict[str, dict[str, str]] = json.loads(lock_file.read_text(encoding="utf-8")).get("packages", {})
    return {name: entry.get("version", "") for name, entry in packages.items() if name.startswith("node_modules/")}


def install_player_packages() -> None:
    """`npm ci` in `player/` unless its node_modules already holds exactly the locked packages."""
    installed = PLAYER_SOURCE / "node_modules" / ".package-lock.json"
    locked = PLAYER_SOURCE / "package-lock.json"
    if installed.is_file() and _locked_versions(installed) == _locked_versions(locked):
        return
    _run(_tool("npm"), "ci", "--no-audit", "--no-fund")


def build_player(out: Path, *, host_dir: Path | None = None) -> None:
    """Build the player into `out` (and the test host page into `host_dir`), as `npm run build` does."""
    install_player_packages()
    host = ["--host", str(host_dir)] if host_dir is not None else []
    _run(_tool("node"), "build.mjs", "--out", str(out), *host)
