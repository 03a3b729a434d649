"""What the server says at start-up, as a client's log shows it: a tokens file other users can read, and a home
folder it cannot write (real server processes, over stdio and HTTP)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from disks import read_only
from harness import text_of
from processes import free_port, http_replica

ALICE = "alice-token-0123456789abcdef"
NOWHERE = "http://127.0.0.1:1"  # no CCAPI: start-up must not need one


def _tokens_file(folder: Path, mode: int) -> Path:
    path = folder / "tokens.json"
    path.write_text(json.dumps({"alice": {"token": ALICE}}), encoding="utf-8")
    path.chmod(mode)
    return path


@pytest.mark.anyio
async def test_a_tokens_file_other_users_can_read_is_warned_of_at_start_naming_the_fix(tmp_path: Path) -> None:
    path = _tokens_file(tmp_path, 0o644)
    async with http_replica(tmp_path / "home", NOWHERE, {"CCAPI_SUNO_HTTP_TOKENS_FILE": str(path)}) as replica:
        log = replica.log
    [warning] = [line for line in log.splitlines() if "other users can read it" in line]
    assert f"{path} holds bearer tokens but other users can read it (mode 0644)" in warning
    assert warning.endswith(f"Run: chmod 600 {path}")
    assert ALICE not in log


@pytest.mark.anyio
async def test_a_private_tokens_file_starts_without_a_warning(tmp_path: Path) -> None:
    path = _tokens_file(tmp_path, 0o600)
    async with http_replica(tmp_path / "home", NOWHERE, {"CCAPI_SUNO_HTTP_TOKENS_FILE": str(path)}) as replica:
        log = replica.log
    assert "other users can read" not in log
    assert "serving MCP over streamable HTTP" in log


def _server_env(home: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("CCAPI_")}
    return env | {"CCAPI_SUNO_HOME": str(home), "CCAPI_API_KEY": "sk-x", "CCAPI_BASE_URL": NOWHERE}


def _fix_line(home: Path) -> str:
    return (
        f"Cannot write to {home} (Read-only file system): set CCAPI_SUNO_HOME to a folder this user can write, "
        f"or make {home} writable."
    )


@pytest.mark.anyio
async def test_a_read_only_home_over_stdio_is_one_line_at_start_and_the_same_answer_to_a_call(tmp_path: Path) -> None:
    home = tmp_path / "home"
    log_path = tmp_path / "stderr.log"
    parameters = StdioServerParameters(command=sys.executable, args=["-m", "ccapi_suno_mcp"], env=_server_env(home))
    with anyio.fail_after(60), read_only(home), log_path.open("w") as log:
        async with Client(stdio_client(parameters, errlog=log)) as client:
            tools = (await client.list_tools()).tools
            refused = await client.call_tool("suno_generate_music", {"description": "a song with nowhere to go"})
            listed = await client.call_tool("suno_list_tasks", {})
    message = text_of(refused)
    assert refused.is_error and _fix_line(home) in message
    assert "Nothing was sent to CCAPI, so nothing was billed." in message
    assert "move it aside" not in message and "restart" not in message
    assert listed.is_error and _fix_line(home) in text_of(listed)
    assert len(tools) > 20
    stderr = log_path.read_text(encoding="utf-8")
    assert next(line for line in stderr.splitlines() if "ERROR" in line).endswith(
        _fix_line(home) + " The task ledger lives there: until then, calls that need it say so."
    )
    assert "Traceback" not in stderr


@pytest.mark.anyio
async def test_a_read_only_home_over_http_without_a_token_exits_with_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    command = [sys.executable, "-m", "ccapi_suno_mcp", "--transport", "http", "--port", str(free_port())]
    with anyio.fail_after(60), read_only(home):
        finished = await anyio.run_process(command, env=_server_env(home), check=False, stdin=subprocess.DEVNULL)
    stderr = finished.stderr.decode()
    assert finished.returncode == 2
    assert stderr.strip().splitlines()[-1].endswith(f"cannot start: {_fix_line(home)}")
    assert "Traceback" not in stderr


SERVES_WITH = """
import gc, sys
import anyio
from ccapi_suno_mcp import cli

def report(*_arguments):
    sys.stderr.write(f"serving: collector on {gc.isenabled()}, frozen {gc.get_freeze_count()}\\n")

anyio.run = report  # stop where the server would start serving stdio
try:
    cli.main(sys.argv[1:])
except SystemExit as exc:
    sys.stderr.write(f"exit {exc.code}: collector on {gc.isenabled()}, frozen {gc.get_freeze_count()}\\n")
"""


def _start(home: Path, *arguments: str, **settings: str) -> str:
    """What the real entry point reports where it would start serving stdio (or exits): the collector's state."""
    env = {**_server_env(home), "CCAPI_API_KEY": "sk-start-0000000000000001", **settings}
    finished = subprocess.run(
        [sys.executable, "-c", SERVES_WITH, *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    return finished.stderr.splitlines()[-1]


@pytest.mark.parametrize("arguments", [[], ["--sandbox"]])
def test_the_server_serves_with_the_garbage_collector_on_and_what_it_loaded_frozen(
    tmp_path: Path, arguments: list[str]
) -> None:
    line = _start(tmp_path / "home", *arguments)
    assert line.startswith("serving: collector on True, frozen "), line
    assert int(line.rsplit(" ", 1)[1]) > 50_000  # the SDK's and our models: loaded once, never walked again


def test_a_start_up_that_fails_leaves_the_collector_on_and_nothing_frozen(tmp_path: Path) -> None:
    line = _start(tmp_path / "home", CCAPI_SUNO_DEADLINE_SECONDS="soon")
    assert line == "exit 2: collector on True, frozen 0"
