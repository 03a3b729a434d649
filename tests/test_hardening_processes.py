"""The hardening promises tried from outside: real server processes over stdio, the sandbox in its own process
with its faults switched on, as a user's client would meet them."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import anyio
import pytest
from mcp import Client, MCPError
from mcp.types import INVALID_PARAMS, CallToolResult

from harness import text_of
from polling import eventually
from processes import control, sandbox_process, stdio_server

SONG = {"description": "a song caught in the money window", "tags": "indie pop"}


def task_id_of(result: CallToolResult) -> str:
    assert result.structured_content is not None, result
    return str(result.structured_content["task_id"])


@pytest.mark.anyio
async def test_after_a_kill_mid_submit_an_identical_call_says_at_once_it_may_have_been_billed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with anyio.fail_after(60):
        async with sandbox_process("--speed", "20") as origin:
            await control(origin, "faults", {"held_submits": 1})
            first_server = stdio_server(home, origin, tmp_path / "first.pid")
            async with Client(first_server) as first, anyio.create_task_group() as tasks:

                async def submit() -> None:
                    with contextlib.suppress(Exception):  # the server is killed under this call
                        await first.call_tool("suno_generate_music", SONG)

                tasks.start_soon(submit)
                await eventually(lambda: _held(origin))
                os.kill(int((tmp_path / "first.pid").read_text()), signal.SIGKILL)
            started = anyio.current_time()
            async with Client(stdio_server(home, origin, tmp_path / "second.pid")) as second:
                again = await second.call_tool("suno_generate_music", SONG)
                answered_after = anyio.current_time() - started
                unknown = await second.call_tool("suno_list_tasks", {"status": "outcome_unknown"})
            stats = await control(origin, "stats")
            await control(origin, "release", {})
    message = text_of(again)
    assert again.is_error
    assert "may have been billed" in message and "force=true" in message and "outcome_unknown" in message
    assert answered_after < 10  # not the 45 s wait for a sender that no longer exists
    assert unknown.structured_content is not None
    [task] = unknown.structured_content["tasks"]
    assert task["task_id"] is None and "stopped before CCAPI's answer was recorded" in task["fail_reason"]
    assert stats["accepted_submits"] == 1  # nothing was sent again


async def _held(origin: str) -> bool:
    return (await control(origin, "held"))["held"] >= 1


@pytest.mark.anyio
async def test_over_stdio_bad_arguments_and_prompts_are_refused_before_anything_is_billed(tmp_path: Path) -> None:
    with anyio.fail_after(60):
        async with sandbox_process("--speed", "20") as origin:
            async with Client(stdio_server(tmp_path / "home", origin, tmp_path / "server.pid")) as client:
                first = await client.call_tool("suno_generate_music", SONG)
                forced = await client.call_tool("suno_generate_music", {**SONG, "force": "yes"})
                nul = await client.call_tool("suno_generate_music", {**SONG, "title": "Rain\x00drops"})
                task_id = task_id_of(first)
                started = anyio.current_time()
                misspelled = await client.call_tool("suno_wait_for_tasks", {"task_ids": [task_id], "timeout": 5})
                refused_after = anyio.current_time() - started
                with pytest.raises(MCPError) as prompt:
                    await client.get_prompt("remix_song", {"clip_id": "c1"})
            stats = await control(origin, "stats")
    assert not first.is_error
    assert forced.is_error and "force" in text_of(forced) and "Nothing was submitted" in text_of(forced)
    assert nul.is_error and "title: contains the control character U+0000" in text_of(nul)
    assert misspelled.is_error and "timeout_seconds" in text_of(misspelled) and refused_after < 5
    assert prompt.value.code == INVALID_PARAMS and "style" in prompt.value.message
    assert (stats["submits"], stats["accepted_submits"]) == (1, 1)


@pytest.mark.anyio
async def test_over_stdio_a_hanging_ccapi_gets_answers_by_the_call_deadline(tmp_path: Path) -> None:
    env = {"CCAPI_SUNO_DEADLINE_SECONDS": "2"}
    with anyio.fail_after(60):
        async with sandbox_process("--speed", "0.01") as origin:
            server = stdio_server(tmp_path / "home", origin, tmp_path / "server.pid", env=env)
            async with Client(server) as client:
                first = await client.call_tool("suno_generate_music", SONG)
                task_id = task_id_of(first)
                await control(origin, "faults", {"scope": "fetch", "latency_seconds": 600})
                started = anyio.current_time()
                status = await client.call_tool("suno_get_task", {"task_id": task_id})
                status_took = anyio.current_time() - started
                await control(origin, "faults", {"scope": "submit", "latency_seconds": 600})
                started = anyio.current_time()
                submit = await client.call_tool("suno_generate_music", {**SONG, "title": "Another"})
                submit_took = anyio.current_time() - started
                await control(origin, "faults", {"latency_seconds": 0})
                unknown = await client.call_tool("suno_list_tasks", {"status": "outcome_unknown"})
    assert not status.is_error and status.structured_content is not None
    assert "not refreshed" in (status.structured_content["not_refreshed"] or "")
    assert status_took < 8
    assert submit.is_error and "may have reached CCAPI" in text_of(submit) and submit_took < 8
    assert unknown.structured_content is not None and len(unknown.structured_content["tasks"]) == 1


@pytest.mark.anyio
async def test_over_stdio_a_key_revoked_mid_session_ends_waits_with_the_key_error(tmp_path: Path) -> None:
    with anyio.fail_after(60):
        async with (
            sandbox_process("--speed", "0.01") as origin,
            Client(stdio_server(tmp_path / "home", origin, tmp_path / "server.pid")) as client,
        ):
            first = await client.call_tool("suno_generate_music", SONG)
            task_id = task_id_of(first)
            await control(origin, "faults", {"key_revoked": True})
            started = anyio.current_time()
            waited = await client.call_tool("suno_wait_for_tasks", {"task_ids": [task_id], "timeout_seconds": 30})
            took = anyio.current_time() - started
            await control(origin, "faults", {"key_revoked": False})
            recovered = await client.call_tool("suno_get_task", {"task_id": task_id})
    assert waited.is_error and "CCAPI rejected the API key" in text_of(waited) and "CCAPI_API_KEY" in text_of(waited)
    assert took < 10
    assert not recovered.is_error
