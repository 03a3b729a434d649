"""Hostile and unlucky input: strict arguments, clean text, unknown names, undecodable lines.

Each refusal must come before anything billable is sent, name the field, and leave the server answering.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
import sys
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import anyio
import pytest
from mcp import MCPError
from mcp.types import INVALID_PARAMS

from ccapi_suno_mcp.ledger import SQLiteLedger
from ccapi_suno_mcp.ledger._owner import _start_marker, owner_alive  # pyright: ignore[reportPrivateUsage]
from harness import MODES, Mode, running, text_of
from rawstdio import raw_server, server_environment

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


def _newer_ledger(path: Path) -> None:
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA user_version = 99")
    connection.execute("CREATE TABLE tasks (future TEXT)")
    connection.commit()
    connection.close()


def _corrupt_ledger(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + b"\xde\xad\xbe\xef" * 1024)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("spoil", "says"), [(_corrupt_ledger, "damaged or not a SQLite database"), (_newer_ledger, "newer")]
)
async def test_an_unusable_ledger_is_reported_by_every_tool_that_needs_it_and_never_touched(
    tmp_path: Path, spoil: Callable[[Path], None], says: str
) -> None:
    ledger = tmp_path / "sandbox-ledger.sqlite3"
    spoil(ledger)
    before = ledger.read_bytes()
    stderr = tmp_path / "stderr.log"
    with anyio.fail_after(30):
        async with raw_server(tmp_path, "--sandbox", stderr=stderr) as server:
            await server.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
            tools = (await server.answer(2))["result"]["tools"]
            listed = await server.call_tool(3, "suno_list_tasks", {})
            generated = await server.call_tool(4, "suno_generate_music", SONG)
            recent_uri = {"uri": "suno://tasks/recent"}
            await server.send({"jsonrpc": "2.0", "id": 5, "method": "resources/read", "params": recent_uri})
            recent = await server.answer(5)
    assert len(tools) == 29
    for answer in (listed, generated):
        text = answer["result"]["content"][0]["text"]
        assert answer["result"]["isError"] is True
        assert str(ledger) in text and says in text and "Move it aside" not in text and "move it aside" in text
        assert "restart" in text
    assert str(ledger) in recent["error"]["message"]
    assert ledger.read_bytes() == before
    log = stderr.read_text()
    assert "Traceback" not in log
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and str(ledger) in errors[0], errors


@pytest.mark.anyio
async def test_doctor_reports_an_unusable_ledger_and_leaves_it_as_it_was(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    _newer_ledger(ledger)
    before = ledger.read_bytes()
    command = [sys.executable, "-m", "ccapi_suno_mcp", "doctor"]
    with anyio.fail_after(30):
        done = await anyio.run_process(command, env=server_environment(tmp_path), check=False)
    report = done.stdout.decode()
    assert done.returncode == 1
    assert "FAIL  ledger" in report and str(ledger) in report and "newer ccapi-suno-mcp" in report
    assert ledger.read_bytes() == before


def _owned_by(path: Path, submission_id: str, owner: str) -> None:
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("UPDATE tasks SET owner = ? WHERE submission_id = ?", (owner, submission_id))
        connection.commit()


@pytest.mark.anyio
async def test_a_submission_in_flight_is_settled_at_once_when_its_process_died_and_waited_for_while_it_lives(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.sqlite3"
    body = {"prompt": "rain", "mv": "chirp-v5"}
    async with await anyio.open_process([sys.executable, "-c", "import sys; sys.stdin.read()"]) as other:
        marker = _start_marker(other.pid)
        assert marker is not None and other.stdin is not None
        owner = f"{socket.gethostname()}:{other.pid}:{marker}"
        async with await SQLiteLedger.open(path) as ledger:
            first = await ledger.begin_submission(tool="suno_generate_music", action="MUSIC", body=body)
            _owned_by(path, first.submission_id, owner)
            while_alive, new_while_alive = await ledger.begin_unless_duplicate(
                tool="suno_generate_music", action="MUSIC", body=body
            )
            assert owner_alive(owner) is True
            await other.stdin.aclose()
            with anyio.fail_after(10):
                await other.wait()
            assert owner_alive(owner) is False
            after_death, new_after_death = await ledger.begin_unless_duplicate(
                tool="suno_generate_music", action="MUSIC", body=body
            )
    assert (while_alive.state, new_while_alive) == ("submitting", False)
    assert (after_death.submission_id, after_death.state, new_after_death) == (
        first.submission_id,
        "outcome_unknown",
        False,
    )
    assert after_death.error is not None and f"pid {other.pid}" in after_death.error


@pytest.mark.anyio
async def test_a_dead_senders_submission_is_settled_by_the_next_look_not_after_two_minutes(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    async with await SQLiteLedger.open(path) as ledger:
        first = await ledger.begin_submission(tool="suno_generate_music", action="MUSIC", body={"prompt": "x"})
        _owned_by(path, first.submission_id, f"{socket.gethostname()}:{2**22 + 7}:gone/1")
        mine = await ledger.begin_submission(tool="suno_generate_music", action="MUSIC", body={"prompt": "y"})
        await ledger.settle_interrupted()
        settled = await ledger.get_submission(first.submission_id)
        still_mine = await ledger.get_submission(mine.submission_id)
    assert settled is not None and settled.state == "outcome_unknown"
    assert still_mine is not None and still_mine.state == "submitting"  # this live process is still sending it


DEADLINE = {"call_deadline": 1.0}


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_with_ccapi_hanging_a_status_tool_answers_by_its_deadline_with_the_ledgers_view_marked(
    tmp_path: Path, mode: Mode
) -> None:
    async with running(tmp_path, mode=mode, settings_options=DEADLINE, poll_interval=60) as harness:
        submitted = await harness.call("suno_generate_music", SONG)
        harness.sandbox.faults.scope, harness.sandbox.faults.latency_seconds = "fetch", 600.0
        started = anyio.current_time()
        with anyio.fail_after(10):
            result = await harness.client.call_tool("suno_get_task", {"task_id": submitted["task_id"]})
            unknown = await harness.fail("suno_get_task", {"task_id": "task_" + "z" * 32})
        took = anyio.current_time() - started
        harness.sandbox.faults.latency_seconds = 0.0
    view = result.structured_content
    assert view is not None and not result.is_error
    assert view["task_id"] == submitted["task_id"] and view["status"] == "NOT_START"
    assert "not refreshed" in view["not_refreshed"] and "did not answer within 1 s" in view["not_refreshed"]
    assert "not refreshed" in text_of(result)
    assert "did not answer in time" in unknown
    assert took < 6  # two calls of a 1 s deadline, not five 30 s read time-outs


@pytest.mark.anyio
async def test_a_submit_past_its_deadline_takes_the_outcome_unknown_path(tmp_path: Path) -> None:
    async with running(tmp_path, settings_options=DEADLINE) as harness:
        harness.sandbox.faults.scope, harness.sandbox.faults.latency_seconds = "submit", 600.0
        with anyio.fail_after(10):
            message = await harness.fail("suno_generate_music", SONG)
            again = await harness.fail("suno_generate_music", SONG)
        harness.sandbox.faults.latency_seconds = 0.0
        unknown = await harness.call("suno_list_tasks", {"status": "outcome_unknown"})
    assert "may have reached CCAPI" in message and "call deadline of 1 s" in message
    assert "outcome is unknown" in again and "force=true" in again
    assert len(unknown["tasks"]) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_a_key_revoked_mid_session_ends_a_wait_with_the_key_error_not_still_running(
    tmp_path: Path, mode: Mode
) -> None:
    async with running(tmp_path, mode=mode) as harness:
        submitted = await harness.call("suno_generate_music", SONG)
        harness.sandbox.faults.key_revoked = True
        with anyio.fail_after(10):
            waited = await harness.fail(
                "suno_wait_for_tasks", {"task_ids": [submitted["task_id"]], "timeout_seconds": 30}
            )
            status = await harness.fail("suno_get_task", {"task_id": submitted["task_id"]})
            many = await harness.fail("suno_get_tasks", {"task_ids": [submitted["task_id"]]})
        harness.sandbox.faults.key_revoked = False
        recovered = await harness.call("suno_get_task", {"task_id": submitted["task_id"]})
    for message in (waited, status, many):
        assert "CCAPI rejected the API key" in message and "CCAPI_API_KEY" in message, message
    assert recovered["task_id"] == submitted["task_id"]


@pytest.mark.anyio
async def test_a_wait_hears_of_a_key_rejected_by_the_watchers_poll(tmp_path: Path) -> None:
    async with running(tmp_path) as harness:
        submitted = await harness.call("suno_generate_music", SONG)

        async def revoke_once_waiting(progress: float, total: float | None, message: str | None) -> None:
            harness.sandbox.faults.key_revoked = True  # after the wait's own first read: only the watcher polls now

        with anyio.fail_after(10):
            result = await harness.client.call_tool(
                "suno_wait_for_tasks",
                {"task_ids": [submitted["task_id"]], "timeout_seconds": 30},
                progress_callback=revoke_once_waiting,
            )
        fetches = harness.sandbox.stats.fetch_batch
    assert result.is_error and "CCAPI_API_KEY" in text_of(result)
    assert fetches >= 2  # the wait's own read, then the watcher's refused one
