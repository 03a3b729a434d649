"""Building what a release ships (sdist, wheel, MCP bundle) from this checkout, for the packaging tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).parent.parent
BUILD_TIMEOUT_SECONDS = 300


def uv() -> str:
    """The uv binary: the one running the tests (`uv run pytest` sets UV), else the one on PATH.

    Raises:
        AssertionError: when there is none; these tests need it, as users of the bundle do.
    """
    found = os.environ.get("UV") or shutil.which("uv")
    assert found, "uv is needed to build and run the package (pip install uv)"
    return found


def outside_env(**extra: str) -> dict[str, str]:
    """This environment without the test run's own virtual environment and settings: what a fresh shell has."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CCAPI_", "UV_PROJECT", "PYTHON")) and name != "VIRTUAL_ENV"
    }
    return env | extra


def run(command: list[str], *, cwd: Path = ROOT, env: dict[str, str] | None = None) -> str:
    """Run a build step; return its stdout.

    Raises:
        AssertionError: with the step's output, when it fails.
    """
    finished = subprocess.run(
        command,
        cwd=cwd,
        env=env or outside_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_SECONDS,
    )
    assert finished.returncode == 0, f"{command} failed ({finished.returncode}):\n{finished.stdout}\n{finished.stderr}"
    return finished.stdout
