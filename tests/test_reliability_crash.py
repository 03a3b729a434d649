"""Nothing is lost across a crash: the real command killed mid-wait, and a new one on the same home."""

from __future__ import annotations

import os
import signal
import sqlite3
from contextlib import closing
from pathlib import Path

import anyio
import pytest
from mcp import Client, MCPError

from ccapi_suno_mcp.ccapi import SunoTask
from ccapi_suno_mcp.ledger import SQLiteLedger
from processes import sandbox_process, stdio_server

SONG = {"description": "a short song that outlives its server", "tags": "indie pop"}


@pytest.mark.anyio
async def test_a_task_submitted_before_the_server_was_killed_mid_wait_finishes_after_a_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with anyio.fail_after(50):
        async with sandbox_process("--speed", "4") as origin:
            async with Client(stdio_server(home, origin, tmp_path / "first.pid")) as first:
                submitted = await first.call_tool("suno_generate_music", SONG)
                assert submitted.structured_content is not None, submitted
                task_id = submitted.structured_content["task_id"]
                pid = int((tmp_path / "first.pid").read_text())
                killed: list[int] = []

                async def kill_on_first_progress(progress: float, total: float | None, message: str | None) -> None:
                    if not killed:  # the wait has started: it reports progress before it blocks
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)

                with pytest.raises(MCPError):
                    await first.call_tool(
                        "suno_wait_for_tasks",
                        {"task_ids": [task_id], "timeout_seconds": 30},
                        progress_callback=kill_on_first_progress,
                    )
            async with Client(stdio_server(home, origin, tmp_path / "second.pid")) as second:
                listed = await second.call_tool("suno_list_tasks", {})
                waited = await second.call_tool("suno_wait_for_tasks", {"task_ids": [task_id], "timeout_seconds": 30})
    assert killed == [pid]
    assert int((tmp_path / "second.pid").read_text()) != pid
    assert listed.structured_content is not None, listed
    assert [task["task_id"] for task in listed.structured_content["tasks"]] == [task_id]
    assert waited.structured_content is not None, waited
    assert waited.structured_content["all_done"], waited.structured_content
    [task] = waited.structured_content["tasks"]
    assert task["status"] == "SUCCESS" and task["clips"]


def ledger_rows(path: Path, task_id: str) -> tuple[str, int, int]:
    """What another reader of the ledger file sees: the task's status, its clips, its status history."""
    with closing(sqlite3.connect(path)) as connection:
        [(status, clips, history)] = connection.execute(
            "SELECT status, (SELECT count(*) FROM clips WHERE clips.task_id = tasks.task_id), "
            "(SELECT count(*) FROM status_history WHERE status_history.submission_id = tasks.submission_id) "
            "FROM tasks WHERE task_id = ?",
            (task_id,),
        ).fetchall()
    return status, clips, history


@pytest.mark.anyio
async def test_a_ledger_update_that_fails_midway_leaves_no_partial_rows(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    clips = [{"clip_id": f"clip-{n}", "title": "Rain", "audio_url": f"https://cdn.example/{n}.mp3"} for n in (1, 2)]
    finished = SunoTask(task_id="task_abc", status="SUCCESS", data={"clips": clips})
    async with await SQLiteLedger.open(path) as ledger:
        record = await ledger.begin_submission(tool="suno_generate_music", action="MUSIC", body={"prompt": "rain"})
        await ledger.record_task_id(record.submission_id, "task_abc")
        with closing(sqlite3.connect(path)) as saboteur:
            # The last statement of the update fails, after its clips and history rows were written.
            saboteur.execute(
                "CREATE TRIGGER full_disk BEFORE UPDATE OF status ON tasks BEGIN SELECT RAISE(ABORT, 'disk full'); END"
            )
            saboteur.commit()
        with pytest.raises(sqlite3.IntegrityError, match="disk full"):
            await ledger.apply_update(finished)
        after_failure = ledger_rows(path, "task_abc")
        with closing(sqlite3.connect(path)) as saboteur:
            saboteur.execute("DROP TRIGGER full_disk")
            saboteur.commit()
        applied = await ledger.apply_update(finished)
        after_success = ledger_rows(path, "task_abc")
    assert after_failure == ("NOT_START", 0, 1)
    assert applied
    assert after_success == ("SUCCESS", 2, 2)
