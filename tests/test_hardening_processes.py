"""The hardening promises tried from outside: real server processes over stdio, the sandbox in its own process
with its faults switched on, as a user's client would meet them."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from harness import text_of
from processes import control, sandbox_process, stdio_server

SONG = {"description": "a song caught in the money window", "tags": "indie pop"}


async def wait_until(check: Any, seconds: float = 20) -> None:
    """Poll `check()` (async) until it is true, at most `seconds`."""
    with anyio.fail_after(seconds):
        while not await check():  # noqa: ASYNC110 - another process's state: polled, with a deadline
            await anyio.sleep(0.02)


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
                await wait_until(lambda: _held(origin))
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
