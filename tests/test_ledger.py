"""The task ledger: nothing submitted is ever forgotten, nothing is submitted twice by accident."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import psycopg
import pytest

from ccapi_suno_mcp.ccapi import SunoTask
from ccapi_suno_mcp.ledger import (
    DEFAULT_PRINCIPAL,
    ClipRecord,
    InvalidCursorError,
    LedgerClosedError,
    LedgerError,
    LocalFile,
    PostgresLedger,
    SchemaVersionError,
    SQLiteLedger,
    StatusChange,
    TaskLedger,
    TaskRecord,
    UnknownSubmissionError,
    body_fingerprint,
)
from ccapi_suno_mcp.ledger._postgres import CHANNEL
from ccapi_suno_mcp.ledger._schema import SQLITE_MIGRATIONS
from polling import eventually
from stores import START, FakeClock, Store

BODY = {"gpt_description_prompt": "a short indie-pop song about rain", "mv": "chirp-v4-5", "make_instrumental": False}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def ledger(store: Store, clock: FakeClock) -> AsyncIterator[SQLiteLedger | PostgresLedger]:
    async with await store.open(clock) as opened:
        yield opened


def clip_json(clip_id: str, title: str = "Soft Steps in the Sun", state: str = "completed") -> dict[str, Any]:
    """One clip as the seed page shows it."""
    return {
        "clip_id": clip_id,
        "state": state,
        "title": title,
        "tags": "pop, light, clean, indie pop, vocal",
        "lyrics": "[Verse 1] Quiet street...",
        "image_url": f"https://cdn2.suno.ai/image_{clip_id}.jpeg",
        "audio_url": f"https://cdn1.suno.ai/{clip_id}.mp3",
        "video_url": None,
        "created_at": "2026-03-13T07:13:16.900Z",
        "duration": 199.96,
        "negative_tags": None,
        "style_weight": None,
        "weirdness_constraint": None,
        "audio_weight": None,
    }


def ccapi_task(
    task_id: str, status: str, progress: str, clips: list[dict[str, Any]] | None = None, fail_reason: str = ""
) -> SunoTask:
    """A task record shaped like the seed page of `POST /suno/fetch`."""
    data: dict[str, Any] = {"progress": progress, "status": status, "task_id": "abf7366c-e769-4cdd-be0f-256d10399f33"}
    if clips is not None:
        data = {"clips": clips}
    return SunoTask.model_validate(
        {
            "id": 4,
            "created_at": 1773385996,
            "updated_at": 1773386004,
            "task_id": task_id,
            "platform": "suno",
            "user_id": 3,
            "group": "suno-A",
            "channel_id": 27,
            "quota": 40000,
            "action": "MUSIC",
            "status": status,
            "fail_reason": fail_reason,
            "result_url": clips[0]["audio_url"] if clips else None,
            "submit_time": 1773385996,
            "start_time": 1773386004,
            "finish_time": 0,
            "progress": progress,
            "properties": {"input": "", "upstream_model_name": "suno_music", "origin_model_name": "suno_music"},
            "data": data,
        }
    )


async def submitted(
    ledger: TaskLedger,
    task_id: str,
    body: dict[str, Any] | None = None,
    *,
    tool: str = "suno_generate_music",
    action: str = "MUSIC",
    parent_task_id: str | None = None,
    parent_clip_id: str | None = None,
) -> TaskRecord:
    record = await ledger.begin_submission(
        tool=tool,
        action=action,
        body=body or {**BODY, "title": task_id},
        parent_task_id=parent_task_id,
        parent_clip_id=parent_clip_id,
    )
    return await ledger.record_task_id(record.submission_id, task_id)


def local_file(path: str, *, clip_id: str | None, task_id: str | None, kind: str = "audio") -> LocalFile:
    return LocalFile(
        clip_id=clip_id, task_id=task_id, kind=kind, path=path, size=1024, content_type="audio/mpeg", created_at=START
    )


@pytest.mark.anyio
async def test_begin_submission_records_the_request_before_any_task_id(ledger: TaskLedger) -> None:
    record = await ledger.begin_submission(tool="suno_generate_music", action="MUSIC", body=BODY)

    assert record == TaskRecord(
        submission_id=record.submission_id,
        task_id=None,
        tool="suno_generate_music",
        action="MUSIC",
        request=BODY,
        fingerprint=body_fingerprint("MUSIC", BODY),
        state="submitting",
        status="NOT_START",
        title="a short indie-pop song about rain",
        created_at=START,
        updated_at=START,
        history=[StatusChange(status="NOT_START", at=START)],
    )
    assert await ledger.get_submission(record.submission_id) == record


@pytest.mark.anyio
async def test_record_task_id_marks_the_submission_submitted(ledger: TaskLedger, clock: FakeClock) -> None:
    record = await ledger.begin_submission(tool="suno_generate_music", action="MUSIC", body=BODY)
    clock.now += 2

    stored = await ledger.record_task_id(record.submission_id, "task_a")

    assert stored == record.model_copy(update={"task_id": "task_a", "state": "submitted", "updated_at": START + 2})
    assert await ledger.get_task("task_a") == stored


@pytest.mark.anyio
async def test_record_task_id_of_an_unknown_submission_raises(ledger: TaskLedger) -> None:
    with pytest.raises(UnknownSubmissionError):
        await ledger.record_task_id("0" * 32, "task_a")


@pytest.mark.anyio
async def test_record_task_id_never_replaces_a_known_task_id(ledger: TaskLedger) -> None:
    record = await submitted(ledger, "task_a")

    with pytest.raises(LedgerError):
        await ledger.record_task_id(record.submission_id, "task_b")
    assert await ledger.get_task("task_a") == record


@pytest.mark.anyio
async def test_body_fingerprint_ignores_key_order_and_action_case() -> None:
    assert body_fingerprint("music", {"a": 1, "b": [1, 2]}) == body_fingerprint("MUSIC", {"b": [1, 2], "a": 1})
    assert body_fingerprint("MUSIC", {"a": 1}) != body_fingerprint("EXTEND", {"a": 1})


@pytest.mark.anyio
async def test_find_duplicate_returns_the_same_body_within_the_window(ledger: TaskLedger, clock: FakeClock) -> None:
    record = await submitted(ledger, "task_a", BODY)
    clock.now += 599

    assert await ledger.find_duplicate("MUSIC", dict(reversed(BODY.items()))) == record.model_copy(
        update={"history": []}
    )


@pytest.mark.anyio
async def test_find_duplicate_counts_a_submission_whose_outcome_is_unknown(ledger: TaskLedger) -> None:
    record = await ledger.begin_submission(tool="suno_generate_music", action="MUSIC", body=BODY)
    unknown = await ledger.mark_outcome_unknown(record.submission_id, "read timed out")

    assert unknown.state == "outcome_unknown"
    assert await ledger.find_duplicate("MUSIC", BODY) == unknown.model_copy(update={"history": []})


@pytest.mark.anyio
async def test_find_duplicate_ignores_submissions_older_than_the_window(ledger: TaskLedger, clock: FakeClock) -> None:
    await submitted(ledger, "task_a", BODY)
    clock.now += 601

    assert await ledger.find_duplicate("MUSIC", BODY) is None
    assert await ledger.find_duplicate("MUSIC", BODY, within_seconds=3600) is not None


@pytest.mark.anyio
async def test_find_duplicate_ignores_rejected_submissions(ledger: TaskLedger) -> None:
    record = await ledger.begin_submission(tool="suno_generate_music", action="MUSIC", body=BODY)
    await ledger.mark_rejected(record.submission_id, "insufficient balance")

    assert await ledger.find_duplicate("MUSIC", BODY) is None


@pytest.mark.anyio
async def test_find_duplicate_ignores_failed_tasks(ledger: TaskLedger) -> None:
    await submitted(ledger, "task_a", BODY)
    await ledger.apply_update(ccapi_task("task_a", "FAILURE", "100%", fail_reason="content policy"))

    assert await ledger.find_duplicate("MUSIC", BODY) is None


@pytest.mark.anyio
async def test_find_duplicate_ignores_a_different_body_or_action(ledger: TaskLedger) -> None:
    await submitted(ledger, "task_a", BODY)

    assert await ledger.find_duplicate("MUSIC", {**BODY, "mv": "chirp-v4"}) is None
    assert await ledger.find_duplicate("EXTEND", BODY) is None


@pytest.mark.anyio
async def test_mark_rejected_keeps_the_error(ledger: TaskLedger) -> None:
    record = await ledger.begin_submission(tool="suno_generate_music", action="MUSIC", body=BODY)

    rejected = await ledger.mark_rejected(record.submission_id, "insufficient balance")

    assert rejected == record.model_copy(update={"state": "rejected", "error": "insufficient balance"})
    assert rejected.is_terminal


@pytest.mark.anyio
async def test_a_late_error_never_unsubmits_a_known_task_id(ledger: TaskLedger) -> None:
    record = await submitted(ledger, "task_a")

    marked = await ledger.mark_outcome_unknown(record.submission_id, "connection reset")

    assert marked == record.model_copy(update={"error": "connection reset"})
    assert await ledger.pending_task_ids() == ["task_a"]


@pytest.mark.anyio
async def test_apply_update_follows_the_lifecycle_with_history_clips_and_finished_at(
    ledger: TaskLedger, clock: FakeClock
) -> None:
    record = await submitted(ledger, "task_a", BODY)
    clock.now += 10
    assert await ledger.apply_update(ccapi_task("task_a", "IN_PROGRESS", "20%"))
    clock.now += 10
    streaming = [clip_json("clip_1", state="streaming"), clip_json("clip_2", "Rain Again", state="streaming")]
    assert await ledger.apply_update(ccapi_task("task_a", "IN_PROGRESS", "60%", streaming))
    clock.now += 60
    final = [clip_json("clip_1"), clip_json("clip_2", "Rain Again")]
    done = ccapi_task("task_a", "SUCCESS", "100%", final)
    assert await ledger.apply_update(done)

    stored = await ledger.get_task("task_a")

    assert stored == record.model_copy(
        update={
            "status": "SUCCESS",
            "progress": "100%",
            "title": "Soft Steps in the Sun",
            "result_url": "https://cdn1.suno.ai/clip_1.mp3",
            "result": {"clips": final},
            "updated_at": START + 80,
            "finished_at": START + 80,
            "quota": 40000,
            "charged_quota": 40000,
            "clips": [
                ClipRecord(
                    clip_id=clip["clip_id"],
                    task_id="task_a",
                    title=clip["title"],
                    tags=clip["tags"],
                    lyrics=clip["lyrics"],
                    audio_url=clip["audio_url"],
                    image_url=clip["image_url"],
                    state="completed",
                    duration=199.96,
                    created_at=clip["created_at"],
                    raw=clip,
                )
                for clip in final
            ],
            "history": [
                StatusChange(status="NOT_START", at=START),
                StatusChange(status="IN_PROGRESS", progress="20%", at=START + 10),
                StatusChange(status="IN_PROGRESS", progress="60%", at=START + 20),
                StatusChange(status="SUCCESS", progress="100%", at=START + 80),
            ],
        }
    )
    assert stored is not None
    assert stored.is_terminal


@pytest.mark.anyio
async def test_apply_update_without_news_changes_nothing(ledger: TaskLedger, clock: FakeClock) -> None:
    await submitted(ledger, "task_a")
    update = ccapi_task("task_a", "SUCCESS", "100%", [clip_json("clip_1")])
    assert await ledger.apply_update(update)
    before = await ledger.get_task("task_a")
    clock.now += 30

    assert not await ledger.apply_update(update)
    assert await ledger.get_task("task_a") == before


@pytest.mark.anyio
async def test_apply_update_ignores_unknown_task_ids(ledger: TaskLedger) -> None:
    assert not await ledger.apply_update(ccapi_task("task_elsewhere", "SUCCESS", "100%", [clip_json("clip_1")]))
    assert await ledger.get_clip("clip_1") is None


@pytest.mark.anyio
async def test_a_terminal_task_never_regresses(ledger: TaskLedger, clock: FakeClock) -> None:
    await submitted(ledger, "task_a")
    await ledger.apply_update(ccapi_task("task_a", "SUCCESS", "100%", [clip_json("clip_1")]))
    done = await ledger.get_task("task_a")
    clock.now += 5

    assert not await ledger.apply_update(ccapi_task("task_a", "IN_PROGRESS", "60%", [clip_json("clip_1")]))
    assert await ledger.get_task("task_a") == done


@pytest.mark.anyio
async def test_unknown_statuses_count_as_pending(ledger: TaskLedger) -> None:
    await submitted(ledger, "task_a")

    assert await ledger.apply_update(ccapi_task("task_a", "rendering", "50%"))
    task = await ledger.get_task("task_a")

    assert task is not None
    assert (task.status, task.is_terminal) == ("RENDERING", False)
    assert await ledger.pending_task_ids() == ["task_a"]


@pytest.mark.anyio
async def test_derived_task_clips_carry_the_lineage_of_their_task(ledger: TaskLedger) -> None:
    await submitted(ledger, "task_a")
    await ledger.apply_update(ccapi_task("task_a", "SUCCESS", "100%", [clip_json("clip_1")]))
    extend_body = {"task_id": "task_a", "continue_clip_id": "clip_1", "continue_at": 120}
    await submitted(
        ledger,
        "task_b",
        extend_body,
        tool="suno_extend_music",
        action="EXTEND",
        parent_task_id="task_a",
        parent_clip_id="clip_1",
    )
    await ledger.apply_update(ccapi_task("task_b", "SUCCESS", "100%", [clip_json("clip_2", "Soft Steps (Extended)")]))

    clip = await ledger.get_clip("clip_2")
    parent_clip = await ledger.get_clip("clip_1")

    assert clip is not None
    assert parent_clip is not None
    assert (clip.task_id, clip.parent_task_id, clip.parent_clip_id) == ("task_b", "task_a", "clip_1")
    assert (parent_clip.task_id, parent_clip.parent_task_id, parent_clip.parent_clip_id) == ("task_a", None, None)


@pytest.mark.anyio
async def test_a_clip_stays_its_songs_when_a_music_video_result_repeats_it(ledger: TaskLedger) -> None:
    song = clip_json("clip_1")
    await submitted(ledger, "task_a")
    await ledger.apply_update(ccapi_task("task_a", "SUCCESS", "100%", [clip_json("clip_0"), song]))
    await submitted(
        ledger,
        "task_v",
        {"task_id": "task_a", "clip_id": "clip_1"},
        tool="suno_generate_music_video",
        action="VIDEO",
        parent_task_id="task_a",
        parent_clip_id="clip_1",
    )
    video_url = "https://cdn1.suno.ai/clip_1.mp4"
    echo = {**song, "title": "Echoed", "audio_url": "https://elsewhere.example/clip_1.mp3", "video_url": video_url}

    assert await ledger.apply_update(ccapi_task("task_v", "SUCCESS", "100%", [echo]))
    assert not await ledger.apply_update(ccapi_task("task_v", "SUCCESS", "100%", [echo]))

    clip = await ledger.get_clip("clip_1")
    song_task = await ledger.get_task("task_a")
    assert clip is not None
    assert song_task is not None
    assert (clip.task_id, clip.parent_task_id, clip.parent_clip_id) == ("task_a", None, None)
    assert (clip.title, clip.audio_url, clip.video_url) == (song["title"], song["audio_url"], video_url)
    assert clip.raw == {**song, "video_url": video_url}
    assert [each.clip_id for each in song_task.clips] == ["clip_0", "clip_1"]


def _as_written_before_the_clip_rule(store: Store, clip_id: str, holder: str, repeat: dict[str, Any]) -> None:
    """Make the database what ledgers before schema step 6 held after a repeat: the clip moved to the repeating
    task, with the repeat's fields, and the schema one step back."""
    update = (
        "UPDATE clips SET task_id = {p}, position = 0, title = {p}, audio_url = {p}, video_url = {p}, raw = {p} "
        "WHERE clip_id = {p}"
    )
    values = (holder, repeat["title"], repeat["audio_url"], repeat["video_url"], json.dumps(repeat), clip_id)
    before = SQLiteLedger.SCHEMA_VERSION - 1
    if store.backend == "sqlite":
        with sqlite3.connect(store.location) as connection:
            connection.execute(update.format(p="?"), values)
            connection.execute(f"PRAGMA user_version = {before}")
        connection.close()
        return
    with psycopg.connect(store.location) as pg:
        pg.execute(update.format(p="%s"), values)
        pg.execute("UPDATE ledger_schema SET version = %s", (before,))


@pytest.mark.anyio
async def test_a_ledger_written_before_gives_a_clip_its_music_video_took_back_to_the_song(store: Store) -> None:
    song, video_url = clip_json("clip_1"), "https://cdn1.suno.ai/clip_1.mp4"
    repeat = {**song, "title": "Echoed", "audio_url": "https://elsewhere.example/clip_1.mp3", "video_url": video_url}
    async with await store.open() as ledger:
        await submitted(ledger, "task_a")
        await ledger.apply_update(ccapi_task("task_a", "SUCCESS", "100%", [clip_json("clip_0"), song]))
        await submitted(
            ledger, "task_v", {"task_id": "task_a", "clip_id": "clip_1"}, tool="suno_generate_music_video",
            action="VIDEO", parent_task_id="task_a", parent_clip_id="clip_1",
        )  # fmt: skip
        await ledger.apply_update(ccapi_task("task_v", "SUCCESS", "100%", [repeat]))
    _as_written_before_the_clip_rule(store, "clip_1", "task_v", repeat)

    async with await store.open() as ledger:
        clip, song_task, video_task = (
            await ledger.get_clip("clip_1"),
            await ledger.get_task("task_a"),
            await ledger.get_task("task_v"),
        )

    assert clip is not None and song_task is not None and video_task is not None
    assert (clip.task_id, clip.title, clip.audio_url, clip.video_url) == (
        "task_a",
        song["title"],
        song["audio_url"],
        video_url,
    )
    assert clip.raw == {**song, "video_url": video_url}
    assert [each.clip_id for each in song_task.clips] == ["clip_0", "clip_1"]
    assert video_task.clips == []


@pytest.mark.anyio
async def test_get_clip_includes_its_local_files(ledger: TaskLedger) -> None:
    await submitted(ledger, "task_a")
    await ledger.apply_update(ccapi_task("task_a", "SUCCESS", "100%", [clip_json("clip_1"), clip_json("clip_2")]))
    audio = local_file("/music/clip_1.mp3", clip_id="clip_1", task_id="task_a")
    await ledger.add_local_file(audio)
    await ledger.add_local_file(local_file("/music/clip_2.mp3", clip_id="clip_2", task_id="task_a"))

    clip = await ledger.get_clip("clip_1")

    assert clip is not None
    assert clip.local_files == [audio]


@pytest.mark.anyio
async def test_task_files_include_its_clips_files_and_task_level_files(ledger: TaskLedger) -> None:
    await submitted(ledger, "task_a")
    await ledger.apply_update(ccapi_task("task_a", "SUCCESS", "100%", [clip_json("clip_1")]))
    clip_file = local_file("/music/clip_1.mp3", clip_id="clip_1", task_id=None)
    task_file = local_file("/music/task_a.mid", clip_id=None, task_id="task_a", kind="midi")
    await ledger.add_local_file(clip_file)
    await ledger.add_local_file(task_file)

    task = await ledger.get_task("task_a")

    assert task is not None
    assert task.local_files == [clip_file, task_file]
    assert task.clips[0].local_files == [clip_file]


@pytest.mark.anyio
async def test_saving_a_file_again_at_the_same_path_replaces_its_record(ledger: TaskLedger) -> None:
    await submitted(ledger, "task_a")
    await ledger.apply_update(ccapi_task("task_a", "SUCCESS", "100%", [clip_json("clip_1")]))
    await ledger.add_local_file(local_file("/music/clip_1.mp3", clip_id="clip_1", task_id="task_a"))
    again = local_file("/music/clip_1.mp3", clip_id="clip_1", task_id="task_a").model_copy(update={"size": 2048})

    await ledger.add_local_file(again)

    clip = await ledger.get_clip("clip_1")
    assert clip is not None
    assert clip.local_files == [again]


@pytest.mark.anyio
async def test_get_tasks_returns_the_known_ones_in_the_given_order(ledger: TaskLedger) -> None:
    first = await submitted(ledger, "task_a")
    second = await submitted(ledger, "task_b")

    tasks = await ledger.get_tasks(["task_b", "task_missing", "task_a", "task_b"])

    assert tasks == [second.model_copy(update={"history": []}), first.model_copy(update={"history": []})]


@pytest.mark.anyio
async def test_list_tasks_is_newest_first_with_clips(ledger: TaskLedger, clock: FakeClock) -> None:
    for task_id in ("task_a", "task_b", "task_c"):
        await submitted(ledger, task_id)
        clock.now += 1
    await ledger.apply_update(ccapi_task("task_b", "SUCCESS", "100%", [clip_json("clip_1")]))

    page = await ledger.list_tasks()

    assert [task.task_id for task in page.tasks] == ["task_c", "task_b", "task_a"]
    assert [clip.clip_id for clip in page.tasks[1].clips] == ["clip_1"]
    assert page.tasks[1].history == []
    assert page.next_cursor is None


@pytest.mark.anyio
async def test_list_tasks_filters_by_status_pending_and_submission_state(ledger: TaskLedger) -> None:
    await submitted(ledger, "task_done")
    await ledger.apply_update(ccapi_task("task_done", "SUCCESS", "100%", [clip_json("clip_1")]))
    await submitted(ledger, "task_running")
    await ledger.apply_update(ccapi_task("task_running", "IN_PROGRESS", "20%"))
    unknown = await ledger.begin_submission(tool="suno_generate_music", action="MUSIC", body={"prompt": "lost"})
    await ledger.mark_outcome_unknown(unknown.submission_id, "read timed out")
    rejected = await ledger.begin_submission(tool="suno_generate_music", action="MUSIC", body={"prompt": "refused"})
    await ledger.mark_rejected(rejected.submission_id, "bad request")

    async def titles(status: str) -> list[str | None]:
        return [task.title for task in (await ledger.list_tasks(status=status)).tasks]

    assert await titles("success") == ["Soft Steps in the Sun"]
    assert await titles("IN_PROGRESS") == ["task_running"]
    assert await titles("pending") == ["lost", "task_running"]
    assert await titles("outcome_unknown") == ["lost"]
    assert await titles("rejected") == ["refused"]


@pytest.mark.anyio
async def test_list_tasks_filters_action_by_token_or_tool_name(ledger: TaskLedger) -> None:
    await submitted(ledger, "task_music")
    await submitted(ledger, "task_extend", {"continue_clip_id": "clip_1"}, tool="suno_extend_music", action="EXTEND")

    by_token = await ledger.list_tasks(action="extend")
    by_tool = await ledger.list_tasks(action="suno_extend_music")

    assert [task.task_id for task in by_token.tasks] == ["task_extend"]
    assert by_tool == by_token


@pytest.mark.anyio
async def test_list_tasks_text_matches_title_request_and_clip_titles_ignoring_case(ledger: TaskLedger) -> None:
    await submitted(ledger, "task_a", {"prompt": "Regentropfen auf dem Dach", "tags": "Ambient"})
    await submitted(ledger, "task_b", {"title": "STRASSE", "tags": "techno"})
    await submitted(ledger, "task_c", {"gpt_description_prompt": "morning song"})
    await ledger.apply_update(ccapi_task("task_c", "SUCCESS", "100%", [clip_json("clip_1", "Café Sunrise")]))

    async def found(text: str) -> list[str | None]:
        return [task.task_id for task in (await ledger.list_tasks(text=text)).tasks]

    assert await found("regentropfen") == ["task_a"]
    assert await found("ambient") == ["task_a"]
    assert await found("straße") == ["task_b"]
    assert await found("CAFÉ") == ["task_c"]
    assert await found("TASK_B") == ["task_b"]
    assert await found("nowhere") == []


@pytest.mark.anyio
async def test_list_tasks_cursor_pages_cover_every_row_exactly_once(ledger: TaskLedger, clock: FakeClock) -> None:
    expected: list[str] = []
    for index in range(23):
        await submitted(ledger, f"task_{index:02d}")
        expected.insert(0, f"task_{index:02d}")
        if index % 3 == 0:  # several submissions share a timestamp: the tiebreak must keep them apart
            clock.now += 1

    seen: list[str | None] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await ledger.list_tasks(limit=5, cursor=cursor)
        seen += [task.task_id for task in page.tasks]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break

    assert seen == expected
    assert pages == 5


@pytest.mark.anyio
async def test_list_tasks_cursor_pages_keep_the_filter(ledger: TaskLedger, clock: FakeClock) -> None:
    for index in range(6):
        await submitted(ledger, f"task_{index}", tool="suno_extend_music" if index % 2 else "suno_generate_music")
        clock.now += 1

    first = await ledger.list_tasks(action="suno_extend_music", limit=2)
    second = await ledger.list_tasks(action="suno_extend_music", limit=2, cursor=first.next_cursor)

    assert [task.task_id for task in first.tasks + second.tasks] == ["task_5", "task_3", "task_1"]
    assert second.next_cursor is None


@pytest.mark.anyio
async def test_list_tasks_refuses_a_cursor_it_did_not_make(ledger: TaskLedger) -> None:
    with pytest.raises(InvalidCursorError):
        await ledger.list_tasks(cursor="not-a-cursor")


@pytest.mark.anyio
async def test_pending_task_ids_are_unfinished_submitted_tasks_oldest_first(
    ledger: TaskLedger, clock: FakeClock
) -> None:
    for task_id in ("task_old", "task_done", "task_new"):
        await submitted(ledger, task_id)
        clock.now += 1
    await ledger.apply_update(ccapi_task("task_done", "SUCCESS", "100%", [clip_json("clip_1")]))
    await ledger.begin_submission(tool="suno_generate_music", action="MUSIC", body={"prompt": "still sending"})

    assert await ledger.pending_task_ids() == ["task_old", "task_new"]


@pytest.mark.anyio
async def test_the_ledger_survives_a_restart(store: Store, clock: FakeClock) -> None:
    async with await store.open(clock) as ledger:
        await submitted(ledger, "task_a")
        await ledger.apply_update(ccapi_task("task_a", "SUCCESS", "100%", [clip_json("clip_1")]))
        await ledger.add_local_file(local_file("/music/clip_1.mp3", clip_id="clip_1", task_id="task_a"))
        before = await ledger.get_task("task_a")

    async with await store.open(clock) as reopened:
        assert await reopened.get_task("task_a") == before
        assert await reopened.count_tasks() == 1


@pytest.mark.anyio
async def test_the_schema_version_is_recorded_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    await (await SQLiteLedger.open(path)).aclose()

    with sqlite3.connect(path) as connection:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
    connection.close()

    assert version == SQLiteLedger.SCHEMA_VERSION >= 1


@pytest.mark.anyio
async def test_the_schema_version_is_recorded_in_the_database(postgres_url: str) -> None:
    await (await PostgresLedger.open(postgres_url)).aclose()

    with psycopg.connect(postgres_url) as connection:
        row = connection.execute("SELECT version FROM ledger_schema").fetchall()

    assert row == [(PostgresLedger.SCHEMA_VERSION,)]
    assert PostgresLedger.SCHEMA_VERSION == SQLiteLedger.SCHEMA_VERSION


@pytest.mark.anyio
async def test_both_backends_migrate_to_the_same_tables_and_columns(tmp_path: Path, postgres_url: str) -> None:
    path = tmp_path / "ledger.sqlite3"
    await (await SQLiteLedger.open(path)).aclose()
    await (await PostgresLedger.open(postgres_url)).aclose()
    with sqlite3.connect(path) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        in_sqlite = {(table, row[1]) for table in tables for row in connection.execute(f"PRAGMA table_info({table})")}
    connection.close()
    with psycopg.connect(postgres_url) as pg:
        rows = pg.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name != 'ledger_schema'"
        ).fetchall()
    in_postgres = {(str(table), str(column)) for table, column in rows}

    # PostgreSQL's clips keep their insertion order in a column; SQLite's is the rowid.
    assert in_postgres - {("clips", "seq")} == in_sqlite


@pytest.mark.anyio
async def test_a_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.execute(f"PRAGMA user_version = {SQLiteLedger.SCHEMA_VERSION + 1}")
    connection.close()

    with pytest.raises(SchemaVersionError, match="upgrade ccapi-suno-mcp"):
        await SQLiteLedger.open(path)


@pytest.mark.anyio
async def test_a_postgresql_database_from_a_newer_version_is_refused_untouched(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as connection:
        connection.execute("CREATE TABLE ledger_schema (version INTEGER NOT NULL)")
        connection.execute("INSERT INTO ledger_schema VALUES (%s)", (PostgresLedger.SCHEMA_VERSION + 1,))

    ledger = PostgresLedger(postgres_url)
    with pytest.raises(SchemaVersionError, match="Upgrade ccapi-suno-mcp on this replica"):
        await ledger.count_tasks()
    with pytest.raises(SchemaVersionError):  # and so on for every later call, without asking the server again
        await ledger.count_tasks()
    await ledger.aclose()

    with psycopg.connect(postgres_url) as connection:
        tables = connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    assert tables == [("ledger_schema",)]


@pytest.mark.anyio
async def test_fifty_concurrent_submissions_all_land(ledger: TaskLedger) -> None:
    async def submit(index: int) -> None:
        await submitted(ledger, f"task_{index}", {"prompt": f"song {index}"})

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            for index in range(50):
                group.start_soon(submit, index)

    assert await ledger.count_tasks() == 50
    assert sorted(await ledger.pending_task_ids()) == sorted(f"task_{index}" for index in range(50))


@pytest.mark.anyio
async def test_two_ledgers_on_one_database_see_each_others_writes(store: Store) -> None:
    async with await store.open() as first, await store.open() as second:
        record = await first.begin_submission(tool="suno_generate_music", action="MUSIC", body=BODY)
        await second.record_task_id(record.submission_id, "task_a")

        assert await first.pending_task_ids() == ["task_a"]


@pytest.mark.anyio
async def test_search_ids_completes_task_and_clip_prefixes_newest_first(ledger: TaskLedger, clock: FakeClock) -> None:
    for task_id in ("task_abc", "task_abd", "task_xyz"):
        await submitted(ledger, task_id)
        clock.now += 1
    await ledger.apply_update(ccapi_task("task_abc", "SUCCESS", "100%", [clip_json("07c958f3"), clip_json("07d1")]))

    assert await ledger.search_ids("task_ab", kind="task") == ["task_abd", "task_abc"]
    assert await ledger.search_ids("task_", kind="task", limit=1) == ["task_xyz"]
    assert await ledger.search_ids("07c", kind="clip") == ["07c958f3"]
    assert await ledger.search_ids("%", kind="clip") == []


@pytest.mark.anyio
async def test_title_falls_back_to_a_shortened_prompt(ledger: TaskLedger) -> None:
    lyrics = "[Verse 1]\nQuiet street, the rain comes down on every roof and every window in the town"

    record = await ledger.begin_submission(tool="suno_generate_music", action="MUSIC", body={"prompt": lyrics})

    assert record.title == "Quiet street, the rain comes down on every roof and every…"


@pytest.mark.anyio
async def test_a_closed_ledger_refuses_calls(store: Store) -> None:
    ledger = await store.open()
    await ledger.aclose()
    await ledger.aclose()

    with pytest.raises(LedgerClosedError):
        await ledger.count_tasks()


@pytest.mark.anyio
async def test_concurrent_identical_claims_begin_only_one_submission(ledger: TaskLedger) -> None:
    outcomes: list[tuple[TaskRecord, bool]] = []

    async def claim() -> None:
        outcomes.append(await ledger.begin_unless_duplicate(tool="suno_generate_music", action="MUSIC", body=BODY))

    async with anyio.create_task_group() as tasks:
        for _ in range(20):
            tasks.start_soon(claim)
    assert sorted(is_new for _, is_new in outcomes).count(True) == 1
    assert len({record.submission_id for record, _ in outcomes}) == 1
    assert await ledger.count_tasks() == 1


@pytest.mark.anyio
async def test_force_claims_always_begin_a_new_submission(ledger: TaskLedger) -> None:
    first, _ = await ledger.begin_unless_duplicate(tool="t", action="MUSIC", body=BODY)
    second, is_new = await ledger.begin_unless_duplicate(tool="t", action="MUSIC", body=BODY, within_seconds=None)
    assert is_new
    assert second.submission_id != first.submission_id


@pytest.mark.anyio
async def test_reopening_marks_long_interrupted_submits_as_outcome_unknown(store: Store, clock: FakeClock) -> None:
    # The sender lives on (elsewhere: SQLite cannot check it, PostgreSQL sees its presence) but is long silent.
    async with await store.open(clock, owner="elsewhere:1:boot/1") as first:
        old = await first.begin_submission(tool="t", action="MUSIC", body=BODY)
        clock.now += 600
        young = await first.begin_submission(tool="t", action="MUSIC", body={**BODY, "title": "other"})
        async with await store.open(clock) as second:
            settled = await second.get_submission(old.submission_id)
            still = await second.get_submission(young.submission_id)
    assert settled is not None and settled.state == "outcome_unknown"
    assert settled.error == "the server stopped while sending this request"
    assert still is not None and still.state == "submitting"


@pytest.mark.anyio
async def test_a_replica_that_died_mid_send_has_its_submission_settled_at_once_by_another(postgres_url: str) -> None:
    first = await PostgresLedger.open(postgres_url, owner="replica-a:7:boot/1")
    record, _ = await first.begin_unless_duplicate(tool="t", action="MUSIC", body=BODY)
    async with await PostgresLedger.open(postgres_url, owner="replica-b:7:boot/1") as second:
        waiting, is_new = await second.begin_unless_duplicate(tool="t", action="MUSIC", body=BODY)
        assert (waiting.submission_id, waiting.state, is_new) == (record.submission_id, "submitting", False)

        await first.aclose()  # its connections end, as when the process is killed

        answers: list[tuple[TaskRecord, bool]] = []

        async def settled_by_second() -> bool:
            answers.append(await second.begin_unless_duplicate(tool="t", action="MUSIC", body=BODY))
            return answers[-1][0].state != "submitting"

        # once the server has ended the first's session (at once, give or take a moment)
        await eventually(settled_by_second, within=10)
        settled, is_new = answers[-1]

    assert (settled.submission_id, settled.state, is_new) == (record.submission_id, "outcome_unknown", False)
    assert settled.error == (
        "the server process that was sending it (pid 7 on replica-a) stopped before CCAPI's answer was recorded"
    )


@pytest.mark.anyio
async def test_one_replica_at_a_time_leads_the_watcher_and_another_takes_over_when_it_goes(postgres_url: str) -> None:
    first = await PostgresLedger.open(postgres_url, owner="replica-a:1:x")
    async with await PostgresLedger.open(postgres_url, owner="replica-b:1:x") as second:
        assert [await first.lead_watcher(), await second.lead_watcher(), await first.lead_watcher()] == [
            True,
            False,
            True,
        ]
        await first.aclose()

        await eventually(second.lead_watcher, within=10)  # once the server has ended the first's session


@pytest.mark.anyio
async def test_replicas_hear_each_others_announcements_but_not_their_own(postgres_url: str) -> None:
    heard: list[tuple[str, list[str], bool, bool]] = []
    arrived = anyio.Event()

    def listener_of(name: str) -> Callable[[list[str], bool, bool], Awaitable[None]]:
        async def listen(task_ids: list[str], list_changed: bool, spend: bool) -> None:
            heard.append((name, task_ids, list_changed, spend))
            if len(heard) == 2:
                arrived.set()

        return listen

    ids = [f"task_{index}" for index in range(150)]
    async with (
        await PostgresLedger.open(postgres_url, owner="replica-a:1:x") as first,
        await PostgresLedger.open(postgres_url, owner="replica-b:1:x") as second,
        anyio.create_task_group() as tasks,
    ):
        tasks.start_soon(first.follow, listener_of("a"))
        tasks.start_soon(second.follow, listener_of("b"))
        with anyio.fail_after(10):
            while not heard:  # LISTEN is under way once an announcement is heard
                await first.announce([], list_changed=False)
                with anyio.move_on_after(0.2):
                    await arrived.wait()
            heard.clear()
            await first.announce(ids, list_changed=True, spend=True)
            await arrived.wait()
        tasks.cancel_scope.cancel()

    assert heard == [("b", ids[:100], True, True), ("b", ids[100:], False, True)]


@pytest.mark.anyio
async def test_a_sqlite_ledger_is_not_shared_and_always_leads_its_own_watcher(tmp_path: Path) -> None:
    async def never(task_ids: list[str], list_changed: bool, spend: bool) -> None:
        raise AssertionError(f"heard {task_ids} {list_changed} on a ledger nobody shares")

    async with await SQLiteLedger.open(tmp_path / "ledger.sqlite3") as ledger:
        await ledger.announce(["task_a"], list_changed=True)
        with anyio.fail_after(5):
            await ledger.follow(never)  # returns at once: nobody else announces
        assert (ledger.shared, await ledger.lead_watcher()) == (False, True)


@pytest.mark.anyio
async def test_text_with_a_nul_character_is_kept_readable_on_both_backends(ledger: TaskLedger) -> None:
    record = await ledger.begin_submission(tool="t", action="MUSIC", body={"prompt": "rain"})
    await ledger.record_task_id(record.submission_id, "task_nul")

    await ledger.apply_update(ccapi_task("task_nul", "SUCCESS", "100%", [clip_json("clip_nul", title="Rain\x00Song")]))

    task = await ledger.get_task("task_nul")
    assert task is not None and task.title in ("Rain\x00Song", "Rain\ufffdSong")


@pytest.mark.anyio
async def test_a_principal_sees_only_its_own_tasks_clips_and_ids(ledger: TaskLedger, clock: FakeClock) -> None:
    alice, bob = ledger.for_principal("alice"), ledger.for_principal("bob")
    await submitted(alice, "task_alice")
    await ledger.apply_update(ccapi_task("task_alice", "SUCCESS", "100%", [clip_json("clip_alice")]))
    await alice.add_local_file(local_file("/music/a.mp3", clip_id="clip_alice", task_id="task_alice"))
    clock.now += 1
    mine = await submitted(bob, "task_bob")
    record = await alice.get_task("task_alice")
    assert record is not None

    assert (await bob.get_task("task_alice"), await bob.get_clip("clip_alice")) == (None, None)
    assert await bob.get_submission(record.submission_id) is None
    assert [task.task_id for task in await bob.get_tasks(["task_alice", "task_bob"])] == ["task_bob"]
    assert [task.task_id for task in (await bob.list_tasks()).tasks] == ["task_bob"]
    assert [task.task_id for task in (await bob.list_tasks(text="task_alice")).tasks] == []
    assert await bob.search_ids("task_", kind="task") == ["task_bob"]
    assert await bob.search_ids("clip_", kind="clip") == []
    assert (await bob.count_tasks(), await alice.count_tasks(), await ledger.count_tasks()) == (1, 1, 0)
    assert await bob.find_duplicate("MUSIC", {**BODY, "title": "task_alice"}) is None
    assert await alice.find_duplicate("MUSIC", {**BODY, "title": "task_alice"}) is not None
    # the watcher's side spans everyone; what is read back after an update is the reader's own
    assert sorted(await bob.pending_task_ids()) == ["task_bob"]
    changed, read = await bob.apply_updates(
        [ccapi_task("task_bob", "IN_PROGRESS", "50%")], then_read=["task_alice", "task_bob"]
    )
    assert (changed, [task.task_id for task in read]) == (["task_bob"], ["task_bob"])
    assert mine.submission_id != record.submission_id


@pytest.mark.anyio
async def test_the_same_request_from_two_principals_begins_two_submissions(ledger: TaskLedger) -> None:
    first, first_new = await ledger.for_principal("alice").begin_unless_duplicate(tool="t", action="MUSIC", body=BODY)
    second, second_new = await ledger.for_principal("bob").begin_unless_duplicate(tool="t", action="MUSIC", body=BODY)
    again, again_new = await ledger.for_principal("alice").begin_unless_duplicate(tool="t", action="MUSIC", body=BODY)

    assert (first_new, second_new, again_new) == (True, True, False)
    assert first.submission_id != second.submission_id == second.submission_id
    assert again.submission_id == first.submission_id


@pytest.mark.anyio
async def test_a_ledger_made_before_principals_belongs_to_the_default_principal(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with sqlite3.connect(path) as connection:
        for step in SQLITE_MIGRATIONS[:3]:
            for statement in step:
                assert isinstance(statement, str)  # the early steps are all SQL
                connection.execute(statement)
        connection.execute("PRAGMA user_version = 3")
        connection.execute(
            "INSERT INTO tasks (submission_id, task_id, tool, action, request, fingerprint, state, status, "
            "created_at, updated_at, search_text) VALUES ('s1', 'task_old', 't', 'MUSIC', '{}', 'f', 'submitted', "
            "'SUCCESS', 1, 1, '')"
        )
    connection.close()

    async with await SQLiteLedger.open(path) as ledger:
        assert ledger.principal == DEFAULT_PRINCIPAL
        assert [task.task_id for task in (await ledger.list_tasks()).tasks] == ["task_old"]
        assert await ledger.for_principal("alice").get_task("task_old") is None


def _terminate(url: str, query_like: str) -> int:
    """Cut the server side of this database's connections whose last query is like `query_like` (as a restart
    of PostgreSQL, or a network failure, would); how many were cut."""
    with psycopg.connect(url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid != pg_backend_pid() AND query LIKE %s",
            (query_like,),
        ).fetchall()
    return len(rows)


@pytest.mark.anyio
async def test_a_leader_whose_connection_is_cut_loses_the_watcher_to_another_and_finds_out(postgres_url: str) -> None:
    async with (
        await PostgresLedger.open(postgres_url, owner="replica-a:1:x") as first,
        await PostgresLedger.open(postgres_url, owner="replica-b:1:x") as second,
    ):
        assert (await first.lead_watcher(), await second.lead_watcher()) == (True, False)
        assert _terminate(postgres_url, "SELECT pg_try_advisory_lock%") == 2  # both replicas' own connections

        taken = await eventually(second.lead_watcher, within=10)  # the lock goes with the leader's session
        lost = await first.lead_watcher()  # reconnects, and finds the lock taken

    assert (taken, lost) == (True, False)


@pytest.mark.anyio
async def test_a_replica_whose_listening_connection_is_cut_listens_again_and_says_it_may_have_missed_news(
    postgres_url: str,
) -> None:
    heard: list[tuple[list[str], bool, bool]] = []
    before: list[tuple[list[str], bool, bool]] = []
    news = anyio.Event()

    async def listen(task_ids: list[str], list_changed: bool, spend: bool) -> None:
        heard.append((task_ids, list_changed, spend))
        news.set()

    async with (
        await PostgresLedger.open(postgres_url, owner="replica-a:1:x") as first,
        await PostgresLedger.open(postgres_url, owner="replica-b:1:x") as second,
        anyio.create_task_group() as tasks,
    ):
        tasks.start_soon(second.follow, listen)
        with anyio.fail_after(20):
            while not heard:
                await first.announce(["task_before"], list_changed=False)
                with anyio.move_on_after(0.2):
                    await news.wait()
            before[:] = heard
            while _terminate(postgres_url, f"LISTEN {CHANNEL}") == 0:  # noqa: ASYNC110 - its LISTEN, once seen
                await anyio.sleep(0.05)
            heard.clear()
            news = anyio.Event()
            await news.wait()  # back: it says it may have missed something
            while ["task_after"] not in [ids for ids, _, _ in heard]:
                await first.announce(["task_after"], list_changed=True)
                await anyio.sleep(0.1)
        tasks.cancel_scope.cancel()

    assert before[0] == (["task_before"], False, False)
    assert heard[0] == ([], True, True)
    assert (["task_after"], True, False) in heard


@pytest.mark.anyio
async def test_a_status_read_answers_while_another_process_holds_the_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    async with await SQLiteLedger.open(path) as ledger:
        await submitted(ledger, "task_read")
        assert await ledger.get_task("task_read") is not None  # the read-only connection is open from here on
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process writing (a long transaction)
        written: list[TaskRecord] = []
        try:
            async with anyio.create_task_group() as tasks:

                async def write() -> None:  # waits, in the ledger's thread, for the other process to finish
                    written.append(await submitted(ledger, "task_queued"))

                tasks.start_soon(write)
                await anyio.wait_all_tasks_blocked()
                with anyio.fail_after(2):  # not queued behind the waiting write (its busy timeout is 10 s)
                    seen = [task.task_id for task in await ledger.get_tasks(["task_read", "task_queued"])]
                    read = await ledger.get_task("task_read")
                assert (seen, written) == (["task_read"], [])
                assert read is not None and read.task_id == "task_read"
                other.execute("ROLLBACK")
        finally:
            other.close()
        assert [record.task_id for record in written] == ["task_queued"]
        assert [task.task_id for task in await ledger.get_tasks(["task_queued"])] == ["task_queued"]


class _BusyOnce:
    """A connection that answers its first statement as SQLite does when a lock cannot be had at once."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection, self.refused = connection, 0

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        if not self.refused:
            self.refused += 1
            busy = sqlite3.OperationalError("database is locked")
            busy.sqlite_errorcode = sqlite3.SQLITE_BUSY_RECOVERY  # pyright: ignore[reportAttributeAccessIssue]
            raise busy
        return self.connection.execute(sql, params)

    @property
    def in_transaction(self) -> bool:
        return self.connection.in_transaction

    def close(self) -> None:
        self.connection.close()


@pytest.mark.anyio
async def test_a_status_read_that_would_wait_for_a_lock_is_answered_from_the_thread(tmp_path: Path) -> None:
    async with await SQLiteLedger.open(tmp_path / "ledger.sqlite3") as ledger:
        await submitted(ledger, "task_busy")
        assert await ledger.get_task("task_busy") is not None
        reader = ledger._s.reader  # pyright: ignore[reportPrivateUsage]
        assert reader is not None
        busy = _BusyOnce(reader.connection)
        reader.connection = busy  # pyright: ignore[reportAttributeAccessIssue]

        read = await ledger.get_task("task_busy")
        again = await ledger.get_task("task_busy")

        assert busy.refused == 1
        assert read is not None and again is not None and read.task_id == again.task_id == "task_busy"


@pytest.mark.anyio
async def test_a_closed_ledger_refuses_status_reads_as_it_refuses_everything(tmp_path: Path) -> None:
    ledger = await SQLiteLedger.open(tmp_path / "ledger.sqlite3")
    await submitted(ledger, "task_closed")
    assert await ledger.get_task("task_closed") is not None
    await ledger.aclose()

    with pytest.raises(LedgerClosedError):
        await ledger.get_task("task_closed")
    with pytest.raises(LedgerClosedError):
        await ledger.get_tasks(["task_closed"])


@pytest.mark.anyio
async def test_status_reads_go_to_the_thread_when_no_read_only_connection_can_be_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await SQLiteLedger.open(tmp_path / "ledger.sqlite3") as ledger:
        await submitted(ledger, "task_no_reader")
        opened: list[str] = []

        def refuse(*args: Any, **kwargs: Any) -> sqlite3.Connection:
            opened.append(str(args[0]))
            raise sqlite3.OperationalError("unable to open database file")

        monkeypatch.setattr(sqlite3, "connect", refuse)
        reads = [await ledger.get_task("task_no_reader") for _ in range(3)]

    assert [read.task_id if read else None for read in reads] == ["task_no_reader"] * 3
    assert len(opened) == 1  # tried once, not on every read


async def _settings_of_the_ledgers_connection(ledger: PostgresLedger, *names: str) -> list[str]:
    def show(session: Any) -> list[str]:
        return [str(next(iter(session.execute(f"SHOW {name}")[0].values()))) for name in names]

    return await ledger._run(show)  # pyright: ignore[reportPrivateUsage]


@pytest.mark.anyio
async def test_postgresql_connections_end_stuck_transactions_and_notice_vanished_hosts(postgres_url: str) -> None:
    async with await PostgresLedger.open(postgres_url) as ledger:
        settings = await _settings_of_the_ledgers_connection(
            ledger, "idle_in_transaction_session_timeout", "tcp_keepalives_idle", "tcp_keepalives_count"
        )
    assert settings == ["1min", "10", "3"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("-c%20statement_timeout%3D5000", ["5s", "1min"]),  # theirs kept, ours added
        ("-c%20idle_in_transaction_session_timeout%3D5000", ["0", "5s"]),  # theirs wins over ours
    ],
)
async def test_settings_in_the_ledger_url_are_the_operators_and_kept(
    postgres_url: str, options: str, expected: list[str]
) -> None:
    async with await PostgresLedger.open(f"{postgres_url}?options={options}") as ledger:
        settings = await _settings_of_the_ledgers_connection(
            ledger, "statement_timeout", "idle_in_transaction_session_timeout"
        )
    assert settings == expected


@pytest.mark.anyio
async def test_closing_while_a_read_opens_the_read_only_connection_closes_that_connection_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = await SQLiteLedger.open(tmp_path / "ledger.sqlite3")
    await submitted(ledger, "task_closing")
    connect, opening, go = sqlite3.connect, threading.Event(), threading.Event()
    readers: list[sqlite3.Connection] = []

    def slow_reader(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        if kwargs.get("timeout") == 0:  # the read-only connection: aclose begins while it is being opened
            opening.set()
            go.wait(5)
            readers.append(connect(*args, **kwargs))
            return readers[-1]
        return connect(*args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", slow_reader)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(ledger.get_task, "task_closing")
        with anyio.fail_after(5):
            await anyio.to_thread.run_sync(opening.wait, 5)
        tasks.start_soon(ledger.aclose)
        await anyio.wait_all_tasks_blocked()  # aclose waits for the read's thread
        go.set()

    assert len(readers) == 1
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        readers[0].execute("SELECT 1")
