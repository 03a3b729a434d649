"""MCP tasks (`io.modelcontextprotocol/tasks`) tried from outside: the real command over stdio (and HTTP replicas on
PostgreSQL), spoken to in raw 2026-07-28 JSON-RPC, with and without the extension declared."""

from __future__ import annotations

import json
import sqlite3
import string
from contextlib import closing
from pathlib import Path
from typing import Any

import anyio
import pytest

from modern import http_request, modern_server, until_done
from polling import eventually
from processes import control, http_replica, sandbox_process
from rawstdio import raw_server

SONG = {"description": "a short song about rain on a tin roof", "tags": "indie pop"}
FAILING = {"description": "a song the model refuses sandbox:fail", "tags": "pop"}
STUCK = {"description": "a song that never ends sandbox:stuck", "tags": "pop"}
LEDGER = "sandbox-ledger.sqlite3"


async def sandbox_stats(home: Path) -> dict[str, Any]:
    """The in-process sandbox's request counters (it listens on the port it leaves in the home folder)."""
    port = (home / "sandbox-port").read_text(encoding="utf-8").strip()
    return await control(f"http://127.0.0.1:{port}", "stats")


def song_of(task: dict[str, Any]) -> dict[str, Any]:
    """The one CCAPI task in a completed MCP task's result."""
    [song] = task["result"]["structuredContent"]["tasks"]
    return song


@pytest.mark.anyio
async def test_a_declared_song_request_becomes_a_task_that_completes_with_what_the_wait_returns(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    with anyio.fail_after(60):
        async with modern_server(home, "--sandbox") as server:
            created = await server.call("suno_generate_music", SONG)
            first = await server.get(created["taskId"])
            done = await until_done(server, created["taskId"])
            task_id = song_of(done)["task_id"]
            waited = await server.call("suno_wait_for_tasks", {"task_ids": [task_id]}, tasks=False)
    assert created["resultType"] == "task"
    assert created["status"] == "working"
    assert "queued" in created["statusMessage"] or "generating" in created["statusMessage"]
    assert created["ttlMs"] == 3_600_000 and 250 <= created["pollIntervalMs"] <= 30_000
    assert len(created["taskId"]) >= 40
    assert set(created["taskId"]) <= set(string.ascii_letters + string.digits + "-_")
    assert first["resultType"] == "complete" and first["taskId"] == created["taskId"]
    assert first["status"] in ("working", "completed")
    assert done["status"] == "completed" and done["statusMessage"].endswith("finished")
    result = done["result"]
    assert result["resultType"] == "complete" and not result.get("isError")
    song = song_of(done)
    assert song["status"] == "SUCCESS" and song["tool"] == "suno_generate_music"
    assert len(song["clips"]) == 2
    for clip in song["clips"]:
        assert clip["final"] and clip["title"] and clip["lyrics"] and clip["audio_url"].endswith(".mp3")
        assert clip["audio_url"] in result["content"][0]["text"]
    assert result["structuredContent"]["all_done"] and not result["structuredContent"]["timed_out"]
    same = dict(result["structuredContent"], waited_seconds=None)
    assert same == dict(waited["structuredContent"], waited_seconds=None)


@pytest.mark.anyio
async def test_without_the_declaration_and_in_the_2025_era_an_action_answers_at_once_as_before(tmp_path: Path) -> None:
    with anyio.fail_after(60):
        async with modern_server(tmp_path / "modern", "--sandbox") as server:
            modern = await server.call("suno_generate_music", SONG, tasks=False)
            waited = await server.call(
                "suno_wait_for_tasks", {"task_ids": [modern["structuredContent"]["task_id"]]}, tasks=False
            )
        async with raw_server(tmp_path / "legacy", "--sandbox") as legacy:
            old = await legacy.call_tool(1, "suno_generate_music", SONG)
    assert modern.get("resultType", "complete") == "complete" and "taskId" not in modern
    assert modern["structuredContent"]["task_id"].startswith("task_") and not modern["structuredContent"]["done"]
    assert waited["structuredContent"]["all_done"]
    assert "taskId" not in old["result"] and old["result"]["structuredContent"]["task_id"].startswith("task_")


@pytest.mark.anyio
async def test_a_refused_call_is_an_error_result_never_a_task(tmp_path: Path) -> None:
    with anyio.fail_after(60):
        async with modern_server(tmp_path / "home", "--sandbox") as server:
            invalid = await server.call("suno_generate_music", {**SONG, "tags": "x" * 5000})
            unknown = await server.call("suno_wait_for_tasks", {"task_ids": ["task_" + "0" * 32], "timeout_seconds": 1})
            status = await server.call("suno_list_tasks", {})
            stats = await sandbox_stats(tmp_path / "home")
    assert invalid["isError"] and "taskId" not in invalid and "Nothing was submitted" in invalid["content"][0]["text"]
    assert unknown["isError"] and "taskId" not in unknown
    assert "taskId" not in status and status["structuredContent"]["tasks"] == []
    assert stats["submits"] == 0


@pytest.mark.anyio
async def test_a_failed_generation_fails_the_task_with_ccapis_reason_and_the_refund(tmp_path: Path) -> None:
    with anyio.fail_after(60):
        async with modern_server(tmp_path / "home", "--sandbox") as server:
            created = await server.call("suno_generate_music", FAILING)
            failed = await until_done(server, created["taskId"])
    assert created["resultType"] == "task"
    assert failed["status"] == "failed" and "result" not in failed
    message = failed["error"]["message"]
    assert "rejected this request and produced nothing" in message
    assert "nothing was billed" in message and "submit it again" in message
    assert failed["statusMessage"].startswith("Failed:")


@pytest.mark.anyio
async def test_a_task_answers_after_its_server_was_killed_and_started_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with anyio.fail_after(90):
        async with modern_server(home, "--sandbox") as first:
            created = await first.call("suno_generate_music", SONG)
            first.kill()
        async with modern_server(home, "--sandbox") as second:
            done = await until_done(second, created["taskId"])
    assert created["status"] == "working"
    assert done["taskId"] == created["taskId"] and done["status"] == "completed"
    assert song_of(done)["status"] == "SUCCESS" and song_of(done)["clips"]


@pytest.mark.anyio
async def test_cancel_stops_following_the_task_and_the_song_still_lands_in_the_ledger(tmp_path: Path) -> None:
    with anyio.fail_after(60):
        async with modern_server(tmp_path / "home", "--sandbox") as server:
            created = await server.call("suno_generate_music", SONG)
            cancelled = await server.result("tasks/cancel", {"taskId": created["taskId"]})
            after = await server.get(created["taskId"])
            unknown = await server.request("tasks/cancel", {"taskId": "never-made"})

            async def finished() -> dict[str, Any] | None:
                listed = await server.call("suno_list_tasks", {}, tasks=False)
                [task] = listed["structuredContent"]["tasks"]
                return task if task["status"] == "SUCCESS" else None

            landed = await eventually(finished)
            still = await server.get(created["taskId"])
    assert cancelled.get("resultType") == "complete"
    assert after["status"] == "cancelled" and "result" not in after
    assert "may still finish and be billed" in after["statusMessage"]
    assert unknown["error"]["code"] == -32602
    assert landed is not None and landed["clips"]
    assert still["status"] == "cancelled"


@pytest.mark.anyio
async def test_an_expired_task_answers_as_expired_and_the_ledger_keeps_the_song(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with anyio.fail_after(60):
        async with modern_server(home, "--sandbox") as server:
            created = await server.call("suno_generate_music", SONG)
            song = song_of(await until_done(server, created["taskId"]))
        with closing(sqlite3.connect(home / LEDGER)) as ledger:  # an hour and more later
            ledger.execute("UPDATE mcp_tasks SET created_at = created_at - 4000, expires_at = expires_at - 4000")
            ledger.commit()
        async with modern_server(home, "--sandbox") as server:
            expired = await server.request("tasks/get", {"taskId": created["taskId"]})
            kept = await server.call("suno_get_task", {"task_id": song["task_id"]}, tasks=False)
    assert expired["error"]["code"] == -32602
    assert "expired" in expired["error"]["message"] and song["task_id"] in expired["error"]["message"]
    assert kept["structuredContent"]["status"] == "SUCCESS"
    assert kept["structuredContent"]["clips"] == song["clips"]


@pytest.mark.anyio
async def test_polling_a_task_costs_no_ccapi_requests(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with anyio.fail_after(60):
        async with modern_server(home, "--sandbox") as server:
            created = await server.call("suno_generate_music", SONG)
            await until_done(server, created["taskId"])
            before = await sandbox_stats(home)
            polls = [await server.get(created["taskId"]) for _ in range(20)]
            after = await sandbox_stats(home)
    assert [poll["status"] for poll in polls] == ["completed"] * 20
    assert after["requests"] == before["requests"]


@pytest.mark.anyio
async def test_a_wait_task_completes_when_its_tasks_end_or_at_its_time_limit(tmp_path: Path) -> None:
    with anyio.fail_after(60):
        async with modern_server(tmp_path / "home", "--sandbox") as server:
            song = (await server.call("suno_generate_music", SONG, tasks=False))["structuredContent"]["task_id"]
            stuck = (await server.call("suno_generate_music", STUCK, tasks=False))["structuredContent"]["task_id"]
            whole = await server.call("suno_wait_for_tasks", {"task_ids": [song], "timeout_seconds": 60})
            finished = await until_done(server, whole["taskId"])
            limited = await server.call("suno_wait_for_tasks", {"task_ids": [song, stuck], "timeout_seconds": 2})
            ended = await until_done(server, limited["taskId"])
    assert limited["resultType"] == "task" and whole["resultType"] == "task"
    assert "1/2 done" in limited["statusMessage"]
    assert ended["status"] == "completed"
    view = ended["result"]["structuredContent"]
    assert view["timed_out"] and not view["all_done"]
    assert [task["done"] for task in view["tasks"]] == [True, False]
    assert stuck in view["next_step"]
    assert finished["status"] == "completed" and finished["result"]["structuredContent"]["all_done"]


ALICE = "alice-tasks-token-0123456789ab"
BOB = "bob-tasks-token-0123456789abcd"


@pytest.mark.anyio
async def test_on_a_team_ledger_any_replica_answers_a_task_and_only_to_its_owner(
    tmp_path: Path, postgres_url: str
) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"alice": {"token": ALICE}, "bob": {"token": BOB}}), encoding="utf-8")
    env = {"CCAPI_SUNO_LEDGER_URL": postgres_url, "CCAPI_SUNO_HTTP_TOKENS_FILE": str(tokens)}
    with anyio.fail_after(120):
        async with (
            sandbox_process("--speed", "4") as origin,
            http_replica(tmp_path / "a", origin, env) as first,
            http_replica(tmp_path / "b", origin, env) as second,
        ):
            call = {"name": "suno_generate_music", "arguments": SONG}
            created = (await http_request(first.url, ALICE, "tools/call", call))["result"]
            task = {"taskId": created["taskId"]}
            bobs = await http_request(second.url, BOB, "tasks/get", task)
            bobs_cancel = await http_request(second.url, BOB, "tasks/cancel", task)

            async def completed_on_second() -> dict[str, Any] | None:
                answer = (await http_request(second.url, ALICE, "tasks/get", task))["result"]
                return answer if answer["status"] != "working" else None

            done = await eventually(completed_on_second, within=60)
            undeclared = await http_request(second.url, ALICE, "tasks/get", task, tasks=False)
    assert created["resultType"] == "task"
    assert bobs["error"] == {"code": -32602, "message": "Failed to retrieve task: Task not found"}
    assert bobs_cancel["error"]["code"] == -32602
    assert done is not None and done["status"] == "completed" and song_of(done)["clips"]
    assert undeclared["error"]["code"] == -32021
