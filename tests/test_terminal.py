"""Started in a terminal, the server says it is waiting for an MCP client and how to connect one; started by a
client (stdin a pipe), it says nothing more than before."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BANNER_START = "ccapi-suno-mcp speaks MCP over stdio"


def _env(home: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("CCAPI_")}
    return env | {"CCAPI_SUNO_HOME": str(home)}


def _readme_line(start: str) -> str:
    """The README's `claude mcp add` line that starts with `start`, for this clone instead of /path/to/..."""
    [line] = [line for line in README.splitlines() if line.startswith(start)]
    return line.replace("/path/to/ccapi-suno-mcp", str(ROOT))


async def _banner_in_a_terminal(home: Path, *arguments: str) -> list[str]:
    """Start the server with a pseudo-terminal as stdin; return the three stderr lines of its banner, then stop it."""
    controller, terminal = pty.openpty()
    try:
        process = await anyio.open_process(
            [sys.executable, "-m", "ccapi_suno_mcp", *arguments],
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(home),
        )
        try:
            assert process.stderr is not None
            text = ""
            with anyio.fail_after(30):
                async for chunk in process.stderr:
                    text += chunk.decode()
                    if BANNER_START in text and text.split(BANNER_START, 1)[1].count("\n") >= 3:
                        break
        finally:
            process.terminate()
            await process.wait()
            await process.aclose()
    finally:
        os.close(controller)
        os.close(terminal)
    banner = BANNER_START + text.split(BANNER_START, 1)[1]
    return banner.splitlines()[:3]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("arguments", "add_line"),
    [
        ((), "claude mcp add ccapi-suno -e CCAPI_API_KEY=sk-... -- uv run --directory"),
        (("--sandbox",), "claude mcp add ccapi-suno-sandbox -- uv run --directory"),
    ],
)
async def test_started_in_a_terminal_it_says_it_waits_for_a_client_and_how_to_add_it(
    tmp_path: Path, arguments: tuple[str, ...], add_line: str
) -> None:
    waiting, add, inspector = await _banner_in_a_terminal(tmp_path, *arguments)
    assert waiting.startswith(BANNER_START) and "waiting for an MCP client" in waiting
    assert add == f"Add it to Claude Code: {_readme_line(add_line)}"
    launch = add.split(" -- ", 1)[1]
    key = "" if arguments else "-e CCAPI_API_KEY=sk-... "
    assert inspector == f"Try it in the MCP Inspector: npx @modelcontextprotocol/inspector {key}{launch}"


@pytest.mark.anyio
async def test_started_by_a_client_it_prints_no_banner_and_serves_as_before(tmp_path: Path) -> None:
    errors = tmp_path / "stderr.txt"
    parameters = StdioServerParameters(command=sys.executable, args=["-m", "ccapi_suno_mcp"], env=_env(tmp_path))
    with errors.open("w", encoding="utf-8") as errlog, anyio.fail_after(30):
        async with Client(stdio_client(parameters, errlog=errlog)) as client:
            tools = (await client.list_tools()).tools
    assert len(tools) == 29
    logged = errors.read_text(encoding="utf-8")
    assert BANNER_START not in logged and "claude mcp add ccapi-suno" not in logged
    assert re.search(r"WARNING .*CCAPI_API_KEY is not set", logged)
