"""The second round of hardening tried from outside: real server processes over stdio and HTTP, the sandbox in
its own process with its faults switched on, as a user's client would meet them."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import INVALID_PARAMS, CallToolResult

from harness import text_of
from polling import eventually
from processes import control, http_replica, sandbox_process, stdio_server
from rawstdio import HANDSHAKE, raw_server

SONG = {"description": "a song with a hostile neighbour", "tags": "indie pop"}
HTTP_TOKEN = "a-bearer-token-for-these-tests"
KEY_WITH_ZWSP = "sk-pastedkey0123456789\u200b"


@asynccontextmanager
async def over_http(home: Path, origin: str, env: dict[str, str]) -> AsyncGenerator[Client]:
    """A client of `ccapi-suno-mcp --transport http` (its own process) against the sandbox at `origin`."""
    async with (
        http_replica(home, origin, {"CCAPI_SUNO_HTTP_TOKEN": HTTP_TOKEN, **env}) as replica,
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {HTTP_TOKEN}"}, timeout=60) as http,
        Client(streamable_http_client(replica.url, http_client=http)) as client,
    ):
        yield client


@pytest.mark.anyio
async def test_a_key_pasted_with_a_zero_width_space_is_named_and_nothing_is_sent_or_recorded(tmp_path: Path) -> None:
    stderr = tmp_path / "stderr.log"
    with anyio.fail_after(90):
        async with sandbox_process() as origin:
            server = stdio_server(tmp_path / "home", origin, tmp_path / "server.pid", key=KEY_WITH_ZWSP)
            with stderr.open("w") as errlog:
                async with Client(stdio_client(server, errlog=errlog)) as client:
                    listed = (await client.list_tools()).tools
                    generated = await client.call_tool("suno_generate_music", SONG)
                    balance = await client.call_tool("suno_get_balance", {})
                    unknown = await client.call_tool("suno_list_tasks", {})
            async with over_http(tmp_path / "http-home", origin, {"CCAPI_API_KEY": KEY_WITH_ZWSP}) as client:
                over_http_generated = await client.call_tool("suno_generate_music", SONG)
                over_http_balance = await client.call_tool("suno_get_balance", {})
            stats = await control(origin, "stats")
    assert listed
    for answer in (generated, balance, over_http_generated, over_http_balance):
        message = text_of(answer)
        assert answer.is_error and "CCAPI_API_KEY" in message and "U+200B (ZERO WIDTH SPACE)" in message, message
        assert "may have reached" not in message and "unexpectedly" not in message
        assert "pastedkey" not in message
    assert unknown.structured_content is not None and unknown.structured_content["tasks"] == []
    log = stderr.read_text()
    assert "CCAPI_API_KEY holds the invisible character U+200B" in log and "pastedkey" not in log
    assert stats["requests"] == 0


def _nested_call(request_id: int, depth: int, *, id_last: bool = False) -> str:
    deep = "[" * depth + "]" * depth
    params = f'"params":{{"name":"suno_list_tasks","arguments":{{"text":{deep}}}}}'
    if id_last:
        return f'{{"jsonrpc":"2.0","method":"tools/call",{params},"id":{request_id}}}'
    return f'{{"jsonrpc":"2.0","id":{request_id},"method":"tools/call",{params}}}'


@pytest.mark.anyio
async def test_a_request_nested_too_deep_over_stdio_is_answered_for_its_own_id_naming_the_limit(
    tmp_path: Path,
) -> None:
    stderr = tmp_path / "stderr.log"
    with anyio.fail_after(60):
        async with raw_server(tmp_path, "--sandbox", stderr=stderr) as server:
            answers: list[dict[str, Any]] = []
            for request_id, depth, id_last in ((11, 300, False), (12, 20_000, False), (13, 20_000, True)):
                await server.send_line(_nested_call(request_id, depth, id_last=id_last))
                answers.append(await server.answer(request_id))
            notification = '{"jsonrpc":"2.0","method":"notifications/cancelled","params":' + "[" * 5000 + "]" * 5000
            await server.send_line(notification + "}")
            after = await server.call_tool(14, "suno_list_tasks", {})
    for answer in answers:
        assert answer["error"]["code"] == INVALID_PARAMS, answer
        message = answer["error"]["message"]
        assert "nests JSON more than 200 levels deep" in message and "surrogate" not in message, message
    assert after["result"]["isError"] is False  # the notification went unanswered, and the server kept going
    assert "Traceback" not in stderr.read_text()


@pytest.mark.anyio
async def test_a_request_nested_too_deep_over_http_is_refused_at_once(tmp_path: Path) -> None:
    headers = {
        "Authorization": f"Bearer {HTTP_TOKEN}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
    }
    with anyio.fail_after(60):
        async with (
            sandbox_process() as origin,
            http_replica(tmp_path / "home", origin, {"CCAPI_SUNO_HTTP_TOKEN": HTTP_TOKEN}) as replica,
            httpx2.AsyncClient(headers=headers, timeout=10) as http,
        ):
            opened = await http.post(replica.url, json=HANDSHAKE[0])
            session = {"mcp-session-id": opened.headers.get("mcp-session-id", "")}
            answers = [
                await http.post(replica.url, content=_nested_call(21, depth), headers=session)
                for depth in (300, 20_000)
            ]
            listing = await http.post(
                replica.url, json={"jsonrpc": "2.0", "id": 22, "method": "tools/list"}, headers=session
            )
    for answer in answers:
        assert answer.status_code == 400, answer.text
        assert "recursion limit exceeded" in answer.json()["error"]["message"]
    assert listing.status_code == 200 and "suno_list_tasks" in listing.text


def _nested_extra(depth: int) -> dict[str, Any]:
    extra: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        extra = {"inner": extra}
    return extra


OVERSIZED_EXTRAS = [
    ({f"field_{number}": number for number in range(10_000)}, "holds 10000 keys (nested ones included); at most 100"),
    ({"blob": "x" * 5_000_000}, "is 5,000,011 bytes as JSON; at most 32,768"),
    (_nested_extra(150), "nests 150 levels deep; at most 10"),
]


@pytest.mark.anyio
async def test_an_oversized_extra_is_refused_over_stdio_and_http_before_anything_is_billed(tmp_path: Path) -> None:
    with anyio.fail_after(120):
        async with sandbox_process() as origin:
            refusals: list[str] = []
            async with Client(stdio_server(tmp_path / "home", origin, tmp_path / "server.pid")) as client:
                for extra, _ in OVERSIZED_EXTRAS:
                    answer = await client.call_tool("suno_generate_music", {**SONG, "extra": extra})
                    assert answer.is_error
                    refusals.append(text_of(answer))
                within = await client.call_tool("suno_generate_music", {**SONG, "extra": _nested_extra(10)})
            async with over_http(tmp_path / "http-home", origin, {}) as client:
                extra, says = OVERSIZED_EXTRAS[2]
                over_http_answer = await client.call_tool("suno_generate_music", {**SONG, "extra": extra})
            stats = await control(origin, "stats")
    for refusal, (_, says) in zip(refusals, OVERSIZED_EXTRAS, strict=True):
        assert f"extra: {says}" in refusal and "Nothing was submitted" in refusal, refusal
    assert over_http_answer.is_error and f"extra: {says}" in text_of(over_http_answer)
    assert not within.is_error, text_of(within)
    assert stats["submits"] == 1  # only the one within the limits


@pytest.mark.anyio
async def test_ccapi_answering_html_pages_is_called_unreadable_over_stdio_and_http_not_still_running(
    tmp_path: Path,
) -> None:
    env = {"CCAPI_SUNO_DEADLINE_SECONDS": "5"}
    with anyio.fail_after(120):
        async with sandbox_process("--speed", "0.01") as origin:
            server = stdio_server(tmp_path / "home", origin, tmp_path / "server.pid", env=env)
            async with Client(server) as client:
                task_id = task_id_of(await client.call_tool("suno_generate_music", SONG))
                await control(origin, "faults", {"scope": "fetch", "html_pages": 100_000})
                started = anyio.current_time()
                status = await client.call_tool("suno_get_task", {"task_id": task_id})
                status_took = anyio.current_time() - started
                unknown = await client.call_tool("suno_get_task", {"task_id": "task_" + "q" * 32})
                waited = await client.call_tool("suno_wait_for_tasks", {"task_ids": [task_id], "timeout_seconds": 8})
            async with over_http(tmp_path / "home", origin, env) as client:
                over_http_waited = await client.call_tool(
                    "suno_wait_for_tasks", {"task_ids": [task_id], "timeout_seconds": 8}
                )
    page = "not a JSON object (text/html, 187 bytes, titled 'Scheduled maintenance')"
    assert status.structured_content is not None and not status.is_error
    assert page in str(status.structured_content["not_refreshed"]) and "did not answer" not in text_of(status)
    assert status_took < 8
    assert unknown.is_error and "cannot read" in text_of(unknown) and page in text_of(unknown)
    for answer in (waited, over_http_waited):
        assert answer.structured_content is not None and not answer.is_error
        next_step = answer.structured_content["next_step"]
        assert "CCAPI could not be read" in next_step and page in next_step, next_step
        assert "this is normal" not in next_step


def task_id_of(result: CallToolResult) -> str:
    assert result.structured_content is not None, text_of(result)
    return str(result.structured_content["task_id"])


def _memory_kb(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (the peak so far) of a process, in kB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {name: int(fields[name].split()[0]) for name in ("VmRSS", "VmHWM")}


@pytest.mark.anyio
async def test_a_30_mb_answer_from_ccapi_is_refused_unread_and_memory_stays_bounded(tmp_path: Path) -> None:
    with anyio.fail_after(120):
        async with sandbox_process("--speed", "0.01") as origin:
            server = stdio_server(tmp_path / "home", origin, tmp_path / "server.pid")
            async with Client(server) as client:
                task_id = task_id_of(await client.call_tool("suno_generate_music", SONG))
                await client.call_tool("suno_get_task", {"task_id": task_id})  # every path warmed up once
                pid = int((tmp_path / "server.pid").read_text())
                before = _memory_kb(pid)
                await control(origin, "faults", {"scope": "fetch", "oversized": 100_000})
                await control(origin, "reset-stats", {})
                answers = [await client.call_tool("suno_get_task", {"task_id": task_id}) for _ in range(3)]
                after = _memory_kb(pid)
            stats = await control(origin, "stats")
    peak_mb, kept_mb = (after["VmHWM"] - before["VmRSS"]) / 1024, (after["VmRSS"] - before["VmRSS"]) / 1024
    assert peak_mb < 60, (before, after)  # not the +170-200 MB of reading and parsing 30 MB
    assert kept_mb < 30, (before, after)
    for answer in answers:
        assert answer.structured_content is not None, text_of(answer)
        assert "more than the 8 MB this server reads" in str(answer.structured_content["not_refreshed"])
    # One fetch per call, and the watcher's poll or two (it starts a second after start-up); never retried: with
    # the client's retries each call would fetch 5 times, each answer as large again.
    assert stats["fetch_one"] + stats["fetch_batch"] <= 3 + 2


@pytest.mark.anyio
async def test_a_poll_answer_that_drips_in_does_not_starve_a_wait(tmp_path: Path) -> None:
    with anyio.fail_after(120):
        async with (
            sandbox_process("--speed", "0.25") as origin,  # a song takes 16 s
            Client(stdio_server(tmp_path / "home", origin, tmp_path / "server.pid")) as client,
        ):
            task_id = task_id_of(await client.call_tool("suno_generate_music", SONG))
            await control(origin, "faults", {"scope": "fetch", "drip": 1, "drip_seconds": 1.0})
            await eventually(lambda: _drip_taken(origin), within=20)  # the watcher's next poll drips
            started = anyio.current_time()
            waited = await client.call_tool("suno_wait_for_tasks", {"task_ids": [task_id], "timeout_seconds": 45})
            took = anyio.current_time() - started
    assert waited.structured_content is not None, text_of(waited)
    assert waited.structured_content["all_done"], waited.structured_content["next_step"]
    assert took < 40


async def _drip_taken(origin: str) -> bool:
    return (await control(origin, "faults"))["drip"] == 0
