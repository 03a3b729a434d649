"""What the server says when a person, not an MCP client, starts it in a terminal."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

__all__ = ["launch_command", "terminal_hint"]

_PACKAGE = Path(__file__).resolve().parent
INSPECTOR = "npx @modelcontextprotocol/inspector"


def _clone_root() -> Path | None:
    """The checkout this package runs from (`server/ccapi_suno_mcp` beside `pyproject.toml`), if it is one."""
    root = _PACKAGE.parent.parent
    if _PACKAGE.parent.name == "server" and (root / "pyproject.toml").is_file() and (root / "uv.lock").is_file():
        return root
    return None


def launch_command(*, sandbox: bool) -> list[str]:
    """The command line that starts this very installation: `uv run --directory <clone>` from a checkout, else
    this interpreter with `-m`."""
    root = _clone_root()
    command = (
        ["uv", "run", "--directory", str(root), "ccapi-suno-mcp"]
        if root is not None
        else [sys.executable, "-m", "ccapi_suno_mcp"]
    )
    return [*command, "--sandbox"] if sandbox else command


def terminal_hint(*, sandbox: bool) -> str:
    """Three lines: this is an MCP server waiting for a client, how to add it to Claude Code, how to try it."""
    launch = launch_command(sandbox=sandbox)
    if sandbox:
        add = ["claude", "mcp", "add", "ccapi-suno-sandbox", "--", *launch]
        inspector = f"{INSPECTOR} {shlex.join(launch)}"
    else:
        add = ["claude", "mcp", "add", "ccapi-suno", "-e", "CCAPI_API_KEY=sk-...", "--", *launch]
        inspector = f"{INSPECTOR} -e CCAPI_API_KEY=sk-... {shlex.join(launch)}"
    return "\n".join(
        [
            "ccapi-suno-mcp speaks MCP over stdio: it is waiting for an MCP client on stdin, not for typing "
            "(Ctrl-C stops it).",
            f"Add it to Claude Code: {shlex.join(add)}",
            f"Try it in the MCP Inspector: {inspector}",
        ]
    )
