"""A key that is an unexpanded variable or a pasted placeholder counts as missing, says so, and reaches no one."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client

from ccapi_suno_mcp.app import create_server
from ccapi_suno_mcp.doctor import run_doctor
from ccapi_suno_mcp.sandbox import ManualClock, Sandbox, serve_sandbox
from ccapi_suno_mcp.settings import Settings
from harness import text_of

PLACEHOLDERS = [
    "${CCAPI_API_KEY}",  # Claude Code passes an unset ${VAR} through as written
    "${user_config.api_key}",  # an MCP bundle host that did not substitute an empty field
    "${env:CCAPI_API_KEY}",  # Cursor's form
    "${input:ccapi-api-key}",  # VS Code's form
    "Bearer ${CCAPI_API_KEY}",
    "$CCAPI_API_KEY",
    "%CCAPI_API_KEY%",
    "{{CCAPI_API_KEY}}",
    "<your CCAPI key>",
    "sk-...",
    "sk-…",
    "sk-xxx",
    "sk-XXXXXXXXXXXXXXXX",
    " sk-*** ",
]
REAL_LOOKING_KEYS = [
    "sk-test-harness-key-0001",
    "sk-x",
    "sk-xx1",
    "sk-AbCdEf0123456789AbCdEf0123456789AbCdEf01234567",
    "key",
]
SONG = {"description": "a short indie-pop song about rain", "tags": "indie pop"}


@pytest.mark.parametrize("value", PLACEHOLDERS)
def test_an_unexpanded_variable_or_a_placeholder_counts_as_a_missing_key(value: str) -> None:
    settings = Settings.from_env({"CCAPI_API_KEY": value})
    assert (settings.api_key, settings.api_key_placeholder) == (None, value.strip())


@pytest.mark.parametrize("value", REAL_LOOKING_KEYS)
def test_a_key_of_any_other_shape_is_taken_as_given(value: str) -> None:
    settings = Settings.from_env({"CCAPI_API_KEY": f" {value} "})
    assert (settings.api_key, settings.api_key_placeholder) == (value, None)


def test_an_unset_or_empty_key_is_missing_without_a_placeholder() -> None:
    for environ in ({}, {"CCAPI_API_KEY": ""}, {"CCAPI_API_KEY": "  "}):
        settings = Settings.from_env(environ)
        assert (settings.api_key, settings.api_key_placeholder) == (None, None)


@pytest.mark.anyio
async def test_every_call_with_a_placeholder_key_says_it_was_not_expanded_and_sends_nothing(tmp_path: Path) -> None:
    sandbox = Sandbox(clock=ManualClock())
    async with serve_sandbox(sandbox) as origin:
        environ = {"CCAPI_API_KEY": "${CCAPI_API_KEY}", "CCAPI_BASE_URL": origin, "CCAPI_SUNO_HOME": str(tmp_path)}
        server = create_server(Settings.from_env(environ), poll_interval=0.02)
        async with Client(server) as client:
            answers = [
                await client.call_tool("suno_generate_music", SONG),
                await client.call_tool("suno_get_balance", {}),
                await client.call_tool("suno_get_task", {"task_id": "task_0123456789"}),
            ]
    for answer in answers:
        assert answer.is_error, answer
        assert "CCAPI_API_KEY holds '${CCAPI_API_KEY}', a placeholder" in text_of(answer)
        assert "did not expand the variable" in text_of(answer)
    assert sandbox.stats.requests == 0


@pytest.mark.anyio
async def test_doctor_reports_a_placeholder_key_as_not_expanded_and_asks_ccapi_nothing(tmp_path: Path) -> None:
    sandbox = Sandbox()
    out = io.StringIO()
    async with serve_sandbox(sandbox) as origin:
        environ = {"CCAPI_API_KEY": "sk-...", "CCAPI_BASE_URL": origin, "CCAPI_SUNO_HOME": str(tmp_path)}
        status = await run_doctor(environ, out=out)
    [line] = [line for line in out.getvalue().splitlines() if line.startswith("FAIL")]
    assert status == 1
    assert "api key" in line and "'sk-...', a placeholder the client did not expand" in line
    assert sandbox.stats.requests == 0


def test_the_server_warns_at_start_up_that_the_key_was_not_expanded(tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("CCAPI_")}
    env |= {"CCAPI_API_KEY": "${CCAPI_API_KEY}", "CCAPI_SUNO_HOME": str(tmp_path)}
    # stdin at end of file: the server starts, finds no client, and stops
    finished = subprocess.run(
        [sys.executable, "-m", "ccapi_suno_mcp"], env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=60
    )
    assert finished.stdout == b""
    [warning] = [line for line in finished.stderr.decode().splitlines() if "CCAPI_API_KEY" in line]
    assert "WARNING" in warning and "'${CCAPI_API_KEY}', a placeholder" in warning
