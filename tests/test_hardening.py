"""Hostile and unlucky input: strict arguments, clean text, unknown names, undecodable lines.

Each refusal must come before anything billable is sent, name the field, and leave the server answering.
"""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
import pytest
from mcp import MCPError
from mcp.types import INVALID_PARAMS

from harness import MODES, Mode, running
from rawstdio import raw_server

SONG = {"description": "a short indie-pop song about rain", "tags": "indie pop"}


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_force_given_as_a_string_is_refused_and_does_not_rebill(tmp_path: Path, mode: Mode) -> None:
    async with running(tmp_path, mode=mode) as harness:
        first = await harness.call("suno_generate_music", SONG)
        message = await harness.fail("suno_generate_music", {**SONG, "force": "yes"})
        again = await harness.call("suno_generate_music", SONG)
        accepted = harness.sandbox.stats.accepted_submits
    assert "force" in message and "valid boolean" in message and "Nothing was submitted" in message
    assert again["reused_existing"] is True and again["task_id"] == first["task_id"]
    assert accepted == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"task_ids": ["task_abc"], "timeout_seconds": "5"}, "timeout_seconds"),
        ({"task_ids": ["task_abc"], "timeout_seconds": True}, "timeout_seconds"),
        ({"task_ids": "task_abc"}, "task_ids"),
        ({"task_ids": ["task_abc"], "timeout_seconds": 5.5}, "timeout_seconds"),
    ],
)
async def test_numbers_booleans_and_lists_are_never_coerced(
    tmp_path: Path, arguments: dict[str, object], field: str
) -> None:
    async with running(tmp_path) as harness:
        message = await harness.fail("suno_wait_for_tasks", arguments)
        requests = harness.sandbox.stats.requests
    assert message.startswith(
        f"Error executing tool suno_wait_for_tasks: Invalid input for suno_wait_for_tasks: {field}"
    )
    assert requests == 0


@pytest.mark.anyio
async def test_a_list_sent_as_a_json_string_is_still_read(tmp_path: Path) -> None:
    async with running(tmp_path) as harness:
        submitted = await harness.call("suno_generate_music", SONG)
        got = await harness.call("suno_get_tasks", {"task_ids": f'["{submitted["task_id"]}"]'})
    assert [task["task_id"] for task in got["tasks"]] == [submitted["task_id"]]


@pytest.mark.anyio
@pytest.mark.parametrize("bad", ["\x00", "\x1b[31m", "\r", "\x7f", "\u0085", "\ud800"])
async def test_control_characters_and_lone_surrogates_in_any_text_are_refused_before_sending(
    tmp_path: Path, bad: str
) -> None:
    async with running(tmp_path) as harness:
        title = await harness.fail("suno_generate_music", {**SONG, "title": f"Rain{bad}drops"})
        nested = await harness.fail("suno_generate_music", {**SONG, "extra": {"persona": {"name": f"x{bad}"}}})
        lyrics = await harness.call("suno_generate_music", {"lyrics": "[Verse]\n\tRain on the roof\n", "tags": "pop"})
        requests = harness.sandbox.stats.submits
    assert "title: contains" in title and "at position 4" in title and "Nothing was submitted" in title
    assert "extra.persona.name: contains" in nested
    assert lyrics["task_id"].startswith("task_")  # newline and tab are fine
    assert requests == 1


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_a_misspelled_argument_is_refused_naming_it_and_the_accepted_ones(tmp_path: Path, mode: Mode) -> None:
    async with running(tmp_path, mode=mode) as harness:
        submitted = await harness.call("suno_generate_music", SONG)
        with anyio.fail_after(10):
            message = await harness.fail("suno_wait_for_tasks", {"task_ids": [submitted["task_id"]], "timeout": 5})
        listing = await harness.fail("suno_list_tasks", {"limt": 5})
        balance = await harness.fail("suno_get_balance", {"verbose": True})
    assert "unknown parameter(s) timeout (it takes task_ids, timeout_seconds)" in message
    assert "did you mean timeout_seconds?" in message
    assert "limt" in listing and "limit" in listing
    assert "it takes none" in balance


@pytest.mark.anyio
async def test_a_line_the_sdk_cannot_decode_gets_an_error_answer_over_real_stdio(tmp_path: Path) -> None:
    stderr = tmp_path / "stderr.log"
    call = (
        '{"jsonrpc":"2.0","id":7,"method":"tools/call",'
        '"params":{"name":"suno_list_tasks","arguments":{"text":"\\ud800"}}}'
    )
    with anyio.fail_after(30):
        async with raw_server(tmp_path, "--sandbox", stderr=stderr) as server:
            await server.send_line(call)
            surrogate = await server.answer(7)
            await server.send_line("this is not JSON at all")
            garbage = await server.answer(None)
            await server.send_line('{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"x":"\\udfff"}}')
            after = await server.call_tool(8, "suno_list_tasks", {})
    assert surrogate["error"]["code"] == -32602 and "surrogate" in surrogate["error"]["message"]
    assert garbage["error"]["code"] == -32700 and garbage["id"] is None
    assert after["result"]["isError"] is False  # the server kept answering
    warnings = [line for line in stderr.read_text().splitlines() if "could not be decoded" in line]
    assert len(warnings) == 3 and all(" WARNING " in line for line in warnings)
    assert "Traceback" not in stderr.read_text()


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("name", "arguments", "says"),
    [
        ("no_such_prompt", {}, "Unknown prompt 'no_such_prompt': the prompts are compose_song"),
        ("remix_song", {"clip_id": "c1"}, "missing required argument(s) style (it takes clip_id, style)"),
        ("compose_song", {"topic": "rain", "mood": "sad"}, "unknown argument(s) mood"),
        ("compose_song", {"topic": "rain", "instrumental": "maybe"}, "instrumental: Input should be 'yes' or 'no'"),
    ],
)
async def test_a_bad_prompt_request_is_invalid_params_with_a_clear_message_and_no_traceback(
    tmp_path: Path, mode: Mode, name: str, arguments: dict[str, str], says: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(tmp_path, mode=mode) as harness:
        with pytest.raises(MCPError) as raised:
            await harness.client.get_prompt(name, arguments)
        fine = await harness.client.get_prompt("compose_song", {"topic": "rain"})
    assert raised.value.code == INVALID_PARAMS
    assert says in raised.value.message
    assert fine.messages
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
