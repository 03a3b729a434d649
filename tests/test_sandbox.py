"""The sandbox against its reference: CCAPI's Suno API as a new-api fork, exercised over real HTTP."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import logging
import os
import re
import shutil
import wave
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mutagen.mp3 import MP3

from ccapi_suno_mcp.sandbox import Faults, ManualClock, Sandbox, SandboxStats, SystemClock, _store, serve_sandbox
from ccapi_suno_mcp.sandbox._store import StateFile

pytestmark = pytest.mark.anyio

KEY = "sk-sandbox-test"
# The field sets of the SUCCESS record and of its clip on CCAPI's "Batch Fetch Tasks" page.
SEED_TASK_FIELDS = {
    "id", "created_at", "updated_at", "task_id", "platform", "user_id", "group", "channel_id", "quota", "action",
    "status", "fail_reason", "result_url", "submit_time", "start_time", "finish_time", "progress", "properties",
    "data",
}  # fmt: skip
SEED_CLIP_FIELDS = {
    "clip_id", "state", "title", "tags", "lyrics", "image_url", "audio_url", "video_url", "created_at", "duration",
    "negative_tags", "style_weight", "weirdness_constraint", "audio_weight",
}  # fmt: skip
LYRICS = "[Verse 1]\nQuiet street under the morning sun\n[Chorus]\nSoft steps, soft steps"
SONG = {"custom_mode": True, "prompt": LYRICS, "title": "Soft Steps in the Sun", "tags": "pop, light, clean"}
PUBLIC_TASK_ID = re.compile(r"task_[A-Za-z0-9]{32}")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sandbox(clock: ManualClock) -> Sandbox:
    return Sandbox(clock=clock)


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncGenerator[httpx2.AsyncClient, None]:
    async with (
        serve_sandbox(sandbox) as origin,
        httpx2.AsyncClient(base_url=origin, headers={"Authorization": f"Bearer {KEY}"}) as http,
    ):
        yield http


async def submit(client: httpx2.AsyncClient, action: str, body: dict[str, Any]) -> str:
    response = await client.post(f"/suno/submit/{action}", json=body)
    assert response.status_code == 200, response.text
    task_id = response.json()["data"]
    assert PUBLIC_TASK_ID.fullmatch(task_id)
    return task_id


async def fetch(client: httpx2.AsyncClient, task_id: str) -> dict[str, Any]:
    response = await client.get(f"/suno/fetch/{task_id}")
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def finish(client: httpx2.AsyncClient, clock: ManualClock, action: str, body: dict[str, Any]) -> dict[str, Any]:
    """Submit, let the sandbox's time run past any action's run time, and return the SUCCESS record."""
    task_id = await submit(client, action, body)
    clock.advance(10)
    record = await fetch(client, task_id)
    assert record["status"] == "SUCCESS", record
    return record


def task_error(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "data": None}


@dataclass(frozen=True)
class Source:
    """A finished MUSIC task and its two clips: what follow-up actions work on."""

    task_id: str
    clip: dict[str, Any]
    other: dict[str, Any]

    def clip_ref(self, field: str = "clip_id") -> dict[str, Any]:
        return {field: self.clip["clip_id"], "task_id": self.task_id}


async def make_song(client: httpx2.AsyncClient, clock: ManualClock) -> Source:
    record = await finish(client, clock, "MUSIC", SONG)
    first, second = record["data"]["clips"]
    return Source(record["task_id"], first, second)


async def test_music_task_goes_from_not_start_to_success_with_the_seed_page_fields(
    client: httpx2.AsyncClient, clock: ManualClock
) -> None:
    submitted_at = int(clock.now())
    task_id = await submit(client, "MUSIC", SONG)

    created = await fetch(client, task_id)
    assert created["status"] == "NOT_START"
    assert (created["progress"], created["start_time"], created["finish_time"]) == ("0%", 0, 0)
    assert set(created) == SEED_TASK_FIELDS - {"result_url"}

    clock.advance(2)
    running = await fetch(client, task_id)
    assert running["status"] == "IN_PROGRESS"
    assert running["start_time"] >= submitted_at
    assert running["finish_time"] == 0
    assert running["data"] == {
        "progress": running["progress"],
        "status": "IN_PROGRESS",
        "task_id": running["data"]["task_id"],
    }
    assert running["data"]["task_id"] != task_id  # the hidden upstream id

    clock.advance(3)
    done = await fetch(client, task_id)
    assert set(done) == SEED_TASK_FIELDS
    assert {key: done[key] for key in ("platform", "group", "channel_id", "quota", "action", "status")} == {
        "platform": "suno",
        "group": "suno-A",
        "channel_id": 27,
        "quota": 40000,
        "action": "MUSIC",
        "status": "SUCCESS",
    }
    assert (done["progress"], done["fail_reason"], done["task_id"]) == ("100%", "", task_id)
    assert done["finish_time"] > done["start_time"] >= done["submit_time"] == done["created_at"] == submitted_at
    assert done["properties"] == {"input": "", "upstream_model_name": "suno_music", "origin_model_name": "suno_music"}
    clips = done["data"]["clips"]
    assert len(clips) == 2
    assert all(set(clip) == SEED_CLIP_FIELDS and clip["state"] == "completed" for clip in clips)
    assert clips[0]["title"] == "Soft Steps in the Sun"
    assert clips[0]["lyrics"] == LYRICS
    assert done["result_url"] == clips[0]["audio_url"]


async def test_progress_rises_while_the_task_runs(client: httpx2.AsyncClient, clock: ManualClock) -> None:
    task_id = await submit(client, "MUSIC", SONG)
    seen: list[int] = []
    for _ in range(4):
        clock.advance(0.8)
        seen.append(int((await fetch(client, task_id))["progress"].rstrip("%")))
    assert seen == sorted(seen)
    assert 1 <= seen[0] < seen[-1] <= 99


async def test_task_is_submitted_upstream_before_it_starts(client: httpx2.AsyncClient, clock: ManualClock) -> None:
    task_id = await submit(client, "MUSIC", SONG)
    clock.advance(0.4)
    record = await fetch(client, task_id)
    assert record["status"] == "SUBMITTED"
    assert record["data"]["status"] == "SUBMITTED"


async def test_running_music_shows_streaming_previews_past_half_way(
    client: httpx2.AsyncClient, clock: ManualClock
) -> None:
    task_id = await submit(client, "MUSIC", SONG)
    clock.advance(1.0)
    assert "clips" not in (await fetch(client, task_id))["data"]

    clock.advance(2.5)
    running = await fetch(client, task_id)
    previews = running["data"]["clips"]
    assert running["status"] == "IN_PROGRESS"
    assert [clip["state"] for clip in previews] == ["streaming", "streaming"]
    assert all("/stream/" in clip["audio_url"] for clip in previews)
    stream = await client.get(previews[0]["audio_url"])
    assert (stream.status_code, stream.headers["content-type"]) == (200, "audio/mpeg")

    clock.advance(1)
    final = (await fetch(client, task_id))["data"]["clips"]
    assert [clip["clip_id"] for clip in final] == [clip["clip_id"] for clip in previews]
    assert all("/media/" in clip["audio_url"] for clip in final)


async def test_speed_divides_every_duration(clock: ManualClock) -> None:
    sandbox = Sandbox(clock=clock, speed=10)
    async with (
        serve_sandbox(sandbox) as origin,
        httpx2.AsyncClient(base_url=origin, headers={"Authorization": KEY}) as http,
    ):
        task_id = await submit(http, "MUSIC", SONG)
        clock.advance(0.41)
        assert (await fetch(http, task_id))["status"] == "SUCCESS"


async def test_submit_answers_with_a_public_task_id_and_empty_message(client: httpx2.AsyncClient) -> None:
    response = await client.post("/suno/submit/MUSIC", json=SONG)
    assert response.status_code == 200
    body = response.json()
    assert (body["code"], body["message"]) == ("success", "")
    assert PUBLIC_TASK_ID.fullmatch(body["data"])


async def test_upsample_tags_submit_carries_the_confirmed_message(client: httpx2.AsyncClient) -> None:
    response = await client.post("/suno/submit/UPSAMPLE_TAGS", json={"tags": "jazz, smooth, saxophone"})
    assert response.json()["message"] == "task completed successfully"


async def test_action_segment_is_case_insensitive(client: httpx2.AsyncClient, sandbox: Sandbox) -> None:
    task_id = await submit(client, "upsample_tags", {"tags": "jazz"})
    assert sandbox.task(task_id)["action"] == "UPSAMPLE_TAGS"


async def test_unknown_fields_in_a_submit_body_are_ignored(client: httpx2.AsyncClient) -> None:
    await submit(client, "MUSIC", {**SONG, "notify_hook": "https://example.com/hook", "wait_audio": False})


async def test_batch_fetch_returns_own_tasks_in_the_order_given(client: httpx2.AsyncClient, sandbox: Sandbox) -> None:
    first = await submit(client, "LYRICS", {"prompt": "the sea"})
    second = await submit(client, "LYRICS", {"prompt": "the sky"})
    async with httpx2.AsyncClient(base_url=str(client.base_url), headers={"Authorization": "Bearer sk-other"}) as other:
        foreign = await submit(other, "LYRICS", {"prompt": "not yours"})

    response = await client.post("/suno/fetch", json={"ids": [second, "task_unknown", foreign, first]})
    assert response.status_code == 200
    body = response.json()
    assert (body["code"], body["message"]) == ("success", "")
    assert [record["task_id"] for record in body["data"]] == [second, first]
    assert body["data"][1] == sandbox.task(first)


async def test_batch_fetch_of_no_ids_is_an_empty_list(client: httpx2.AsyncClient) -> None:
    response = await client.post("/suno/fetch", json={"ids": []})
    assert response.json() == {"code": "success", "message": "", "data": []}


async def test_batch_fetch_ignores_an_action_field(client: httpx2.AsyncClient) -> None:
    task_id = await submit(client, "LYRICS", {"prompt": "the sea"})
    response = await client.post("/suno/fetch", json={"ids": [task_id], "action": "MUSIC"})
    assert [record["task_id"] for record in response.json()["data"]] == [task_id]


@pytest.mark.parametrize("content", [b"{not json", b"[]", b'{"ids": "task_x"}', b'{"ids": [1, 2]}', b"{}"])
async def test_batch_fetch_rejects_a_body_without_a_list_of_ids(client: httpx2.AsyncClient, content: bytes) -> None:
    response = await client.post("/suno/fetch", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


async def test_fetch_of_an_unknown_task_is_task_not_exist(client: httpx2.AsyncClient) -> None:
    response = await client.get("/suno/fetch/task_doesnotexist")
    assert response.status_code == 400
    assert response.json() == task_error("task_not_exist", "task_not_exist")


async def test_each_key_is_a_user_who_sees_only_its_own_tasks(client: httpx2.AsyncClient, sandbox: Sandbox) -> None:
    mine = await submit(client, "LYRICS", {"prompt": "mine"})
    async with httpx2.AsyncClient(base_url=str(client.base_url), headers={"Authorization": "Bearer sk-other"}) as other:
        response = await other.get(f"/suno/fetch/{mine}")
        theirs = await submit(other, "LYRICS", {"prompt": "theirs"})
    assert response.status_code == 400
    assert response.json()["code"] == "task_not_exist"
    assert sandbox.task(mine)["user_id"] != sandbox.task(theirs)["user_id"]


@pytest.mark.parametrize(
    ("api_key", "authorization"),
    [(None, None), (None, "Bearer"), ("sk-right", "Bearer sk-wrong")],
    ids=["missing", "empty", "wrong"],
)
async def test_requests_without_a_valid_key_get_new_apis_401_body(
    clock: ManualClock, api_key: str | None, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    async with (
        serve_sandbox(Sandbox(clock=clock, api_key=api_key)) as origin,
        httpx2.AsyncClient(base_url=origin) as http,
    ):
        response = await http.post("/suno/submit/MUSIC", json=SONG, headers=headers)
    assert response.status_code == 401
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("new_api_error", "")
    assert re.fullmatch(r".+ \(request id: \w+\)", error["message"])


async def test_bearer_prefix_is_optional_and_a_configured_key_is_accepted(clock: ManualClock) -> None:
    async with (
        serve_sandbox(Sandbox(clock=clock, api_key="sk-right")) as origin,
        httpx2.AsyncClient(base_url=origin) as http,
    ):
        bare = await http.post("/suno/fetch", json={"ids": []}, headers={"Authorization": "sk-right"})
        bearer = await http.post("/suno/fetch", json={"ids": []}, headers={"Authorization": "Bearer sk-right"})
    assert (bare.status_code, bearer.status_code) == (200, 200)


@pytest.mark.parametrize("action", ["NOPE", "PERSONA"])
async def test_unknown_actions_are_invalid_action(client: httpx2.AsyncClient, action: str) -> None:
    response = await client.post(f"/suno/submit/{action}", json={"prompt": "x"})
    assert response.status_code == 400
    assert response.json() == task_error("invalid_action", "invalid_action")


@pytest.mark.parametrize("content", [b"{oops", b'["a list"]', b'"text"'])
async def test_submit_body_must_be_a_json_object(client: httpx2.AsyncClient, content: bytes) -> None:
    response = await client.post("/suno/submit/MUSIC", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


@pytest.mark.parametrize(
    ("action", "body", "message"),
    [
        ("MUSIC", {"prompt": LYRICS}, "custom_mode: is required"),
        ("MUSIC", {"custom_mode": True}, "prompt: is required when custom_mode is true"),
        (
            "MUSIC",
            {"custom_mode": False, "prompt": "x"},
            "gpt_description_prompt: is required when custom_mode is false",
        ),
        ("MUSIC", {**SONG, "style_weight": 1.5}, "style_weight: must be between 0 and 1"),
        ("MUSIC", {**SONG, "vocal_gender": "x"}, "vocal_gender: must be one of f, m"),
        ("MUSIC", {**SONG, "title": "t" * 81}, "title: must be at most 80 characters"),
        ("MUSIC", {**SONG, "make_instrumental": "yes"}, "make_instrumental: must be true or false"),
        ("UPLOAD", {"url": "ftp://example.com/a.mp3"}, "url: must be an http(s) URL"),
        ("SOUNDS", {"prompt": "rain", "bpm": 0}, "bpm: must be between 1 and 300"),
        ("STEMS", {"task_id": "task_x"}, "clip_id: is required"),
        ("MASHUP", {"clip_ids": ["a"], "custom_mode": False}, "clip_ids: must be a list of exactly 2 clip ids"),
        ("UPSAMPLE_TAGS", {}, "tags: is required"),
    ],
)
async def test_invalid_fields_are_rejected_with_the_field_named(
    client: httpx2.AsyncClient, sandbox: Sandbox, action: str, body: dict[str, Any], message: str
) -> None:
    response = await client.post(f"/suno/submit/{action}", json=body)
    assert response.status_code == 400
    assert response.json() == task_error("invalid_request", message)
    assert sandbox.stats.accepted_submits == 0


async def test_lyrics_without_a_prompt_is_prompt_empty(client: httpx2.AsyncClient) -> None:
    response = await client.post("/suno/submit/LYRICS", json={"prompt": "  "})
    assert response.status_code == 400
    assert response.json()["code"] == "prompt_empty"


async def test_continue_clip_id_without_task_id_is_task_id_is_empty(client: httpx2.AsyncClient) -> None:
    response = await client.post("/suno/submit/EXTEND", json={"continue_clip_id": "some-clip", "continue_at": 10})
    assert response.status_code == 400
    assert response.json() == task_error("invalid_request", "task id is empty")


async def test_task_id_must_name_an_own_task(client: httpx2.AsyncClient) -> None:
    response = await client.post("/suno/submit/COVER", json={"continue_clip_id": "c", "task_id": "task_unknown"})
    assert response.status_code == 400
    assert response.json() == task_error("task_not_exist", "task_not_exist")


async def test_follow_up_on_an_unknown_clip_is_clip_not_found(client: httpx2.AsyncClient, clock: ManualClock) -> None:
    song = await make_song(client, clock)
    response = await client.post("/suno/submit/WAV", json={"clip_id": "no-such-clip", "task_id": song.task_id})
    assert response.status_code == 400
    assert response.json() == task_error("invalid_request", "clip not found: no-such-clip")


async def test_follow_up_must_name_the_task_that_made_the_clip(client: httpx2.AsyncClient, clock: ManualClock) -> None:
    song = await make_song(client, clock)
    other = await finish(client, clock, "LYRICS", {"prompt": "the sea"})
    response = await client.post(
        "/suno/submit/WAV", json={"clip_id": song.clip["clip_id"], "task_id": other["task_id"]}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert song.task_id in response.json()["message"]


async def test_clips_of_an_unfinished_task_cannot_be_used_yet(client: httpx2.AsyncClient, clock: ManualClock) -> None:
    task_id = await submit(client, "MUSIC", SONG)
    clock.advance(3.5)
    preview = (await fetch(client, task_id))["data"]["clips"][0]
    response = await client.post("/suno/submit/WAV", json={"clip_id": preview["clip_id"], "task_id": task_id})
    assert response.status_code == 400
    assert response.json()["message"].startswith("clip not ready")


async def test_extend_must_continue_inside_the_source_clip(client: httpx2.AsyncClient, clock: ManualClock) -> None:
    song = await make_song(client, clock)
    body = {**song.clip_ref("continue_clip_id"), "continue_at": song.clip["duration"]}
    response = await client.post("/suno/submit/EXTEND", json=body)
    assert response.status_code == 400
    assert response.json()["message"].startswith("continue_at: must be less than")


@dataclass(frozen=True)
class ActionCase:
    token: str
    body: Callable[[Source], dict[str, Any]]
    data_fields: frozenset[str]
    clips: int | None = None
    """How many clips `data.clips` holds, if any."""


CLIPS = frozenset({"clips"})
ACTION_CASES = [
    ActionCase("MUSIC", lambda s: SONG, CLIPS, 2),
    ActionCase("LYRICS", lambda s: {"prompt": "a song about the sea"}, frozenset({"results"})),
    ActionCase(
        "EXTEND",
        lambda s: {**s.clip_ref("continue_clip_id"), "continue_at": 30, "custom_mode": True, "prompt": "[Verse 3]\nOn"},
        CLIPS,
        2,
    ),
    ActionCase("COVER", lambda s: {**s.clip_ref("continue_clip_id"), "tags": "jazz", "audio_weight": 0.7}, CLIPS, 2),
    ActionCase("STEMS", lambda s: s.clip_ref(), CLIPS, 2),
    ActionCase("STEMS_FULL", lambda s: s.clip_ref(), CLIPS, 12),
    ActionCase("ADD_VOCALS", lambda s: {**s.clip_ref("continue_clip_id"), "prompt": "[Verse]\nNew words"}, CLIPS, 2),
    ActionCase("ADD_INSTRUMENTAL", lambda s: s.clip_ref("continue_clip_id"), CLIPS, 2),
    ActionCase("REPLACE_SECTION", lambda s: {**s.clip_ref(), "infill_start_s": 10, "infill_end_s": 20}, CLIPS, 1),
    ActionCase("REMASTER", lambda s: {**s.clip_ref("continue_clip_id"), "variation_category": "subtle"}, CLIPS, 2),
    ActionCase(
        "MASHUP",
        lambda s: {
            "clip_ids": [s.clip["clip_id"], s.other["clip_id"]],
            "custom_mode": False,
            "gpt_description_prompt": "a blend",
        },
        CLIPS,
        2,
    ),
    ActionCase(
        "SAMPLE",
        lambda s: {**s.clip_ref("sample_clip_id"), "chop_sample_start_s": 5, "chop_sample_end_s": 15},
        CLIPS,
        2,
    ),
    ActionCase("SOUNDS", lambda s: {"prompt": "rain on a tin roof", "loop": True, "bpm": 90, "key": "C"}, CLIPS, 2),
    ActionCase("MIDI", lambda s: s.clip_ref(), frozenset({"midi_url", "instruments"})),
    ActionCase(
        "UPLOAD", lambda s: {"url": "https://example.com/audio/my-demo.mp3"}, frozenset({"clip_id", "clips"}), 1
    ),
    ActionCase("CONCAT", lambda s: s.clip_ref("continue_clip_id"), CLIPS, 1),
    ActionCase("ALIGNED_LYRICS", lambda s: s.clip_ref(), frozenset({"alignment"})),
    ActionCase("VIDEO", lambda s: s.clip_ref(), frozenset({"video_url", "clips"}), 1),
    ActionCase("WAV", lambda s: s.clip_ref(), frozenset({"wav_url"})),
    ActionCase("BPM", lambda s: s.clip_ref(), frozenset({"average_bpm", "max_bpm", "min_bpm"})),
    ActionCase(
        "VOX",
        lambda s: {**s.clip_ref(), "vocal_start_s": 0, "vocal_end_s": 20},
        frozenset({"vox_audio_id", "audio_url", "vocal_start_s", "vocal_end_s"}),
    ),
    ActionCase("UPSAMPLE_TAGS", lambda s: {"tags": "jazz, smooth, saxophone"}, frozenset({"upsampled_tags"})),
]
WITHOUT_RESULT_URL = {"LYRICS", "ALIGNED_LYRICS", "BPM", "UPSAMPLE_TAGS"}


@pytest.mark.parametrize("case", ACTION_CASES, ids=[case.token for case in ACTION_CASES])
async def test_every_action_succeeds_with_its_kind_of_result(
    client: httpx2.AsyncClient, clock: ManualClock, case: ActionCase
) -> None:
    song = await make_song(client, clock)
    record = await finish(client, clock, case.token, case.body(song))
    assert set(record) == SEED_TASK_FIELDS - ({"result_url"} if case.token in WITHOUT_RESULT_URL else set())
    assert record["action"] == case.token
    assert record["properties"]["upstream_model_name"] == f"suno_{case.token.lower()}"
    assert set(record["data"]) == case.data_fields
    if case.clips is not None:
        clips = record["data"]["clips"]
        assert len(clips) == case.clips
        assert all(set(clip) == SEED_CLIP_FIELDS and clip["state"] == "completed" for clip in clips)


async def test_stem_clips_are_named_after_their_instruments(client: httpx2.AsyncClient, clock: ManualClock) -> None:
    song = await make_song(client, clock)
    basic = await finish(client, clock, "STEMS", song.clip_ref())
    full = await finish(client, clock, "STEMS_FULL", song.clip_ref())
    title = song.clip["title"]
    assert [clip["title"] for clip in basic["data"]["clips"]] == [f"{title} (Vocals)", f"{title} (Instrumental)"]
    assert full["data"]["clips"][2]["title"] == f"{title} (Drums)"
    assert full["data"]["clips"][-1]["title"] == f"{title} (FX)"


async def test_extension_concatenates_into_the_full_song(client: httpx2.AsyncClient, clock: ManualClock) -> None:
    song = await make_song(client, clock)
    extended = await finish(client, clock, "EXTEND", {**song.clip_ref("continue_clip_id"), "continue_at": 60})
    extension = extended["data"]["clips"][0]
    assert extension["duration"] < song.clip["duration"]

    body = {"continue_clip_id": extension["clip_id"], "task_id": extended["task_id"]}
    full = (await finish(client, clock, "CONCAT", body))["data"]["clips"][0]
    assert full["duration"] == pytest.approx(60 + extension["duration"])
    assert full["title"] == song.clip["title"]


async def test_uploaded_clip_can_be_covered(client: httpx2.AsyncClient, clock: ManualClock) -> None:
    upload = await finish(client, clock, "UPLOAD", {"url": "https://example.com/files/night-drive.mp3"})
    uploaded = upload["data"]["clips"][0]
    assert upload["data"]["clip_id"] == uploaded["clip_id"]
    assert uploaded["title"] == "night-drive"

    cover = await finish(
        client, clock, "COVER", {"continue_clip_id": uploaded["clip_id"], "task_id": upload["task_id"]}
    )
    assert cover["data"]["clips"][0]["title"] == "night-drive (Cover)"


async def test_aligned_lyrics_follow_the_clip_lyrics(client: httpx2.AsyncClient, clock: ManualClock) -> None:
    song = await make_song(client, clock)
    alignment = (await finish(client, clock, "ALIGNED_LYRICS", song.clip_ref()))["data"]["alignment"]
    assert [word["word"] for word in alignment[:3]] == ["Quiet", "street", "under"]
    assert alignment[0]["line"] == 1
    assert alignment[-1]["line"] == 2
    assert all(word["end_s"] > word["start_s"] for word in alignment)


async def test_aligned_lyrics_of_an_instrumental_fail(client: httpx2.AsyncClient, clock: ManualClock) -> None:
    song = await finish(client, clock, "MUSIC", {**SONG, "make_instrumental": True})
    clip_ref = {"clip_id": song["data"]["clips"][0]["clip_id"], "task_id": song["task_id"]}
    task_id = await submit(client, "ALIGNED_LYRICS", clip_ref)
    clock.advance(10)
    record = await fetch(client, task_id)
    assert (record["status"], record["fail_reason"]) == ("FAILURE", "The clip has no lyrics to align.")


async def test_bpm_is_deterministic_per_clip(client: httpx2.AsyncClient, clock: ManualClock) -> None:
    song = await make_song(client, clock)
    first = (await finish(client, clock, "BPM", song.clip_ref()))["data"]
    second = (await finish(client, clock, "BPM", song.clip_ref()))["data"]
    assert first == second
    assert first["min_bpm"] < first["average_bpm"] < first["max_bpm"]


async def test_vox_window_is_at_most_thirty_seconds(client: httpx2.AsyncClient, clock: ManualClock) -> None:
    song = await make_song(client, clock)
    response = await client.post("/suno/submit/VOX", json={**song.clip_ref(), "vocal_start_s": 0, "vocal_end_s": 31})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


async def test_media_links_serve_real_files(client: httpx2.AsyncClient, clock: ManualClock) -> None:
    song = await make_song(client, clock)
    midi = (await finish(client, clock, "MIDI", song.clip_ref()))["data"]["midi_url"]
    video = (await finish(client, clock, "VIDEO", song.clip_ref()))["data"]["video_url"]
    wav = (await finish(client, clock, "WAV", song.clip_ref()))["data"]["wav_url"]
    # (link, content type, offset and bytes of the format's signature)
    expected: list[tuple[str, str, int, bytes]] = [
        (song.clip["audio_url"], "audio/mpeg", 0, b"\xff\xfb"),  # an MPEG-1 Layer III frame, as CCAPI serves
        (song.clip["image_url"], "image/png", 0, b"\x89PNG\r\n\x1a\n"),
        (video, "video/mp4", 4, b"ftyp"),
        (midi, "audio/midi", 0, b"MThd"),
        (wav, "audio/wav", 0, b"RIFF"),
    ]
    for url, content_type, offset, signature in expected:
        response = await client.get(url)
        assert response.status_code == 200, url
        assert response.headers["content-type"] == content_type
        assert response.content[offset : offset + len(signature)] == signature, url
    assert song.clip["audio_url"].endswith(f"/media/{song.clip['clip_id']}.mp3")
    mp3: Any = MP3(io.BytesIO((await client.get(song.clip["audio_url"])).content))  # mutagen is partly typed
    assert (mp3.info.channels, mp3.info.sample_rate, mp3.info.bitrate) == (1, 48_000, 64_000)
    assert 1.5 < mp3.info.length < 3
    with wave.open(io.BytesIO((await client.get(wav)).content)) as audio:
        assert (audio.getnchannels(), audio.getsampwidth(), audio.getframerate()) == (1, 2, 22050)
        assert audio.getnframes() > 0


async def test_unknown_media_is_not_found(client: httpx2.AsyncClient) -> None:
    assert (await client.get("/media/nothing.wav")).status_code == 404
    assert (await client.get("/stream/nothing")).status_code == 404


async def test_rate_limited_requests_get_429_with_retry_after(client: httpx2.AsyncClient, sandbox: Sandbox) -> None:
    sandbox.faults.rate_limited = 1
    sandbox.faults.retry_after_seconds = 7
    limited = await client.post("/suno/fetch", json={"ids": []})
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "7"
    assert (await client.post("/suno/fetch", json={"ids": []})).status_code == 200
    assert sandbox.stats.faults_injected == 1


async def test_server_errors_get_500_with_a_task_error_body(client: httpx2.AsyncClient, sandbox: Sandbox) -> None:
    sandbox.faults.server_errors = 1
    response = await client.post("/suno/submit/MUSIC", json=SONG)
    assert response.status_code == 500
    assert set(response.json()) == {"code", "message", "data"}
    assert sandbox.stats.accepted_submits == 0


async def test_html_errors_get_a_502_page(client: httpx2.AsyncClient, sandbox: Sandbox) -> None:
    sandbox.faults.html_errors = 1
    response = await client.post("/suno/fetch", json={"ids": []})
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert "502 Bad Gateway" in response.text


async def test_malformed_answers_are_not_json(client: httpx2.AsyncClient, sandbox: Sandbox) -> None:
    sandbox.faults.malformed = 1
    response = await client.post("/suno/fetch", json={"ids": []})
    assert response.status_code == 200
    with pytest.raises(ValueError, match=r"."):
        response.json()


async def test_dropped_connection_is_a_transport_error(client: httpx2.AsyncClient, sandbox: Sandbox) -> None:
    sandbox.faults.dropped = 1
    with pytest.raises(httpx2.TransportError):
        await client.post("/suno/fetch", json={"ids": []})
    assert (await client.post("/suno/fetch", json={"ids": []})).status_code == 200


async def test_lost_submit_response_still_creates_and_bills_the_task(
    client: httpx2.AsyncClient, sandbox: Sandbox
) -> None:
    sandbox.faults.lost_submit_responses = 1
    with pytest.raises(httpx2.TransportError):
        await client.post("/suno/submit/MUSIC", json=SONG)
    assert sandbox.stats.accepted_submits == 1
    assert (await client.get("/v1/dashboard/billing/usage")).json()["total_usage"] == pytest.approx(8.0)


async def test_insufficient_balance_is_new_apis_403_quota_not_enough(
    client: httpx2.AsyncClient, sandbox: Sandbox
) -> None:
    sandbox.faults.insufficient_balance = 1
    response = await client.post("/suno/submit/MUSIC", json=SONG)
    assert response.status_code == 403
    assert response.json() == {"code": "quota_not_enough", "message": "user quota is not enough", "data": None}
    assert sandbox.stats.accepted_submits == 0
    await submit(client, "MUSIC", SONG)


async def test_balance_runs_out_after_ten_dollars(client: httpx2.AsyncClient, clock: ManualClock) -> None:
    song = await make_song(client, clock)  # 0.08 USD
    for _ in range(24):  # 0.40 USD each: 9.68 USD spent
        await submit(client, "STEMS_FULL", song.clip_ref())
    response = await client.post("/suno/submit/STEMS_FULL", json=song.clip_ref())
    assert response.status_code == 403
    assert response.json()["code"] == "quota_not_enough"
    await submit(client, "WAV", song.clip_ref())  # 0.01 USD still fits


async def test_stuck_task_stays_in_progress_below_100_percent(
    client: httpx2.AsyncClient, clock: ManualClock, sandbox: Sandbox
) -> None:
    sandbox.faults.stuck = 1
    stuck = await submit(client, "MUSIC", SONG)
    normal = await submit(client, "MUSIC", SONG)
    clock.advance(3600)
    record = await fetch(client, stuck)
    assert (record["status"], record["progress"], record["finish_time"]) == ("IN_PROGRESS", "99%", 0)
    assert (await fetch(client, normal))["status"] == "SUCCESS"


async def test_failing_task_ends_in_failure_and_is_refunded(
    client: httpx2.AsyncClient, clock: ManualClock, sandbox: Sandbox
) -> None:
    sandbox.faults.failing = 1
    task_id = await submit(client, "MUSIC", SONG)
    clock.advance(10)
    record = await fetch(client, task_id)
    assert set(record) == SEED_TASK_FIELDS - {"result_url"}
    assert (record["status"], record["progress"]) == ("FAILURE", "100%")
    assert record["fail_reason"]
    assert record["finish_time"] > 0
    assert (await client.get("/v1/dashboard/billing/usage")).json()["total_usage"] == 0


@pytest.mark.parametrize(("marker", "status"), [("sandbox:fail", "FAILURE"), ("sandbox:stuck", "IN_PROGRESS")])
async def test_text_markers_make_a_task_fail_or_stick(
    client: httpx2.AsyncClient, clock: ManualClock, marker: str, status: str
) -> None:
    task_id = await submit(client, "MUSIC", {"custom_mode": False, "gpt_description_prompt": f"a song {marker}"})
    clock.advance(600)
    assert (await fetch(client, task_id))["status"] == status


async def test_fault_scope_limits_generic_faults_to_one_kind_of_route(
    client: httpx2.AsyncClient, sandbox: Sandbox
) -> None:
    sandbox.faults.scope = "submit"
    sandbox.faults.server_errors = 1
    assert (await client.post("/suno/fetch", json={"ids": []})).status_code == 200
    assert (await client.post("/suno/submit/MUSIC", json=SONG)).status_code == 500


async def test_latency_delays_every_answer(client: httpx2.AsyncClient, sandbox: Sandbox) -> None:
    sandbox.faults.latency_seconds = 0.05
    started = anyio.current_time()
    with anyio.fail_after(5):
        await client.post("/suno/fetch", json={"ids": []})
    assert anyio.current_time() - started >= 0.05


async def test_billing_routes_report_the_balance_in_new_api_shapes(client: httpx2.AsyncClient) -> None:
    await submit(client, "MUSIC", SONG)  # 40000 quota = 0.08 USD
    subscription = (await client.get("/v1/dashboard/billing/subscription")).json()
    assert subscription == {
        "object": "billing_subscription",
        "has_payment_method": True,
        "soft_limit_usd": 10.0,
        "hard_limit_usd": 10.0,
        "system_hard_limit_usd": 10.0,
        "access_until": 0,
    }
    usage = (await client.get("/v1/dashboard/billing/usage")).json()
    assert usage == {"object": "list", "total_usage": pytest.approx(8.0)}
    token = (await client.get("/api/usage/token/")).json()
    assert (token["code"], token["message"]) == (True, "ok")
    assert {key: token["data"][key] for key in ("total_granted", "total_used", "total_available")} == {
        "total_granted": 5_000_000,
        "total_used": 40_000,
        "total_available": 4_960_000,
    }


async def test_billing_routes_need_a_key(client: httpx2.AsyncClient) -> None:
    response = await client.get("/v1/dashboard/billing/subscription", headers={"Authorization": ""})
    assert response.status_code == 401


async def test_models_list_every_action_token(client: httpx2.AsyncClient) -> None:
    models = (await client.get("/v1/models")).json()
    assert models["object"] == "list"
    assert {model["id"] for model in models["data"]} == {f"suno_{case.token.lower()}" for case in ACTION_CASES}


async def test_control_routes_set_faults_advance_the_clock_and_report_stats(
    client: httpx2.AsyncClient, sandbox: Sandbox, clock: ManualClock
) -> None:
    set_faults = await client.post("/_sandbox/faults", json={"rate_limited": 2, "scope": "fetch"})
    assert set_faults.json()["rate_limited"] == 2
    assert (sandbox.faults.rate_limited, sandbox.faults.scope) == (2, "fetch")

    before = clock.now()
    advanced = await client.post("/_sandbox/clock/advance", json={"seconds": 12.5})
    assert advanced.json() == {"now": before + 12.5}

    await client.post("/suno/fetch", json={"ids": []})
    stats = (await client.get("/_sandbox/stats")).json()
    assert (stats["requests"], stats["fetch_batch"], stats["faults_injected"]) == (1, 1, 1)

    assert (await client.post("/_sandbox/reset-stats")).json() == {**vars(SandboxStats()), "by_action": {}}
    assert sandbox.stats == SandboxStats()


@pytest.mark.parametrize("change", [{"nope": 1}, {"dropped": -1}, {"scope": "media"}, {"latency_seconds": "slow"}])
async def test_control_faults_rejects_unknown_fields_and_bad_values(
    client: httpx2.AsyncClient, sandbox: Sandbox, change: dict[str, Any]
) -> None:
    response = await client.post("/_sandbox/faults", json=change)
    assert response.status_code == 400
    assert sandbox.faults == Faults()


async def test_clock_cannot_be_advanced_on_the_system_clock() -> None:
    sandbox = Sandbox(clock=SystemClock())
    async with serve_sandbox(sandbox) as origin, httpx2.AsyncClient(base_url=origin) as http:
        response = await http.post("/_sandbox/clock/advance", json={"seconds": 1})
    assert response.status_code == 409


async def test_stats_count_requests_submits_and_fetches(client: httpx2.AsyncClient, sandbox: Sandbox) -> None:
    sandbox.faults.rate_limited = 1
    await client.post("/suno/submit/MUSIC", json=SONG)  # rate limited, still a submit
    await client.post("/suno/submit/MUSIC", json={})  # rejected, still a submit
    task_id = await submit(client, "MUSIC", SONG)
    await submit(client, "LYRICS", {"prompt": "the sea"})
    await client.get(f"/suno/fetch/{task_id}")
    await client.post("/suno/fetch", json={"ids": [task_id]})
    await client.get("/v1/models")
    await client.get("/media/nothing.wav")  # not an API request
    assert sandbox.stats == SandboxStats(
        requests=7,
        submits=4,
        accepted_submits=2,
        fetch_one=1,
        fetch_batch=1,
        faults_injected=1,
        by_action={"MUSIC": 1, "LYRICS": 1},
    )


async def test_task_accessor_returns_the_record_the_api_serves(client: httpx2.AsyncClient, sandbox: Sandbox) -> None:
    task_id = await submit(client, "MUSIC", SONG)
    assert sandbox.task(task_id) == await fetch(client, task_id)
    with pytest.raises(KeyError):
        sandbox.task("task_unknown")


async def test_serve_sandbox_points_media_links_at_its_own_origin(sandbox: Sandbox) -> None:
    async with serve_sandbox(sandbox) as origin:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", origin)
        assert sandbox.base_url == origin


def test_manual_clock_moves_only_forward() -> None:
    clock = ManualClock(start=100.0)
    clock.advance(2.5)
    assert clock.now() == 102.5
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)


async def test_the_app_also_runs_in_process_through_asgi_transport(sandbox: Sandbox) -> None:
    transport = httpx2.ASGITransport(app=sandbox.app)
    async with httpx2.AsyncClient(
        transport=transport, base_url="http://sandbox", headers={"Authorization": KEY}
    ) as http:
        task_id = await submit(http, "MUSIC", SONG)
    assert sandbox.task(task_id)["status"] == "NOT_START"


# --- persistence: state_path keeps accounts, balances, tasks and clips across restarts ---


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "sandbox" / "state.json"  # its folder does not exist yet: the sandbox creates it


@contextlib.asynccontextmanager
async def serving(sandbox: Sandbox, key: str = KEY) -> AsyncGenerator[httpx2.AsyncClient, None]:
    async with (
        serve_sandbox(sandbox) as origin,
        httpx2.AsyncClient(base_url=origin, headers={"Authorization": f"Bearer {key}"}) as http,
    ):
        yield http


def origin(http: httpx2.AsyncClient) -> str:
    return str(http.base_url).rstrip("/")


def links_of(record: dict[str, Any]) -> list[str]:
    clips: list[dict[str, Any]] = record["data"]["clips"]
    return [record["result_url"], *(clip[key] for clip in clips for key in ("audio_url", "image_url"))]


async def test_a_task_submitted_before_a_restart_finishes_after_it_on_another_port(
    clock: ManualClock, state_path: Path
) -> None:
    first = Sandbox(clock=clock, state_path=state_path)
    submitted_at = clock.now()
    async with serving(first) as before:
        task_id = await submit(before, "MUSIC", SONG)
        assert (await fetch(before, task_id))["status"] == "NOT_START"
        # The second instance starts while the first still holds its port, so the two ports surely differ. It
        # runs 4x faster: tasks it creates are quicker, but the timeline of a restored task stays as it was.
        second = Sandbox(clock=clock, state_path=state_path, speed=4)
        async with serving(second) as after:
            assert second.base_url != first.base_url
            clock.advance(3)
            running = await fetch(after, task_id)
            assert (running["status"], running["progress"]) == ("IN_PROGRESS", "70%")
            streams = [clip["audio_url"] for clip in running["data"]["clips"]]
            assert len(streams) == 2 and all(url.startswith(f"{second.base_url}/stream/") for url in streams)

            clock.advance(2)
            done = await fetch(after, task_id)
            assert set(done) == SEED_TASK_FIELDS
            assert (done["status"], done["id"], done["task_id"]) == ("SUCCESS", 1, task_id)
            assert (done["submit_time"], done["finish_time"]) == (int(submitted_at), int(submitted_at + 4))
            assert done["data"]["clips"][0]["title"] == SONG["title"]
            batch = await after.post("/suno/fetch", json={"ids": [task_id, "task_unknown"]})
            assert batch.json()["data"] == [done]
            assert second.task(task_id) == done

            for link in [*links_of(done), *streams]:
                assert re.fullmatch(rf"{re.escape(second.base_url)}/(media|stream)/[\w.-]+", link), link
                response = await after.get(link)
                assert response.status_code == 200, link
                assert response.headers["content-type"] in ("audio/mpeg", "image/png")
                assert len(response.content) > 100


async def test_follow_ups_on_clips_made_before_a_restart_are_accepted(clock: ManualClock, state_path: Path) -> None:
    async with serving(Sandbox(clock=clock, state_path=state_path)) as before:
        song = await make_song(before, clock)

    async with serving(Sandbox(clock=clock, state_path=state_path)) as after:
        extended = await finish(after, clock, "EXTEND", {**song.clip_ref("continue_clip_id"), "continue_at": 60})
        assert extended["id"] == 2  # row ids carry on
        extension = extended["data"]["clips"][0]
        assert extension["title"] == f"{song.clip['title']} (Extended)"
        wav = await finish(after, clock, "WAV", song.clip_ref())
        assert (await after.get(wav["data"]["wav_url"])).status_code == 200

    async with serving(Sandbox(clock=clock, state_path=state_path)) as again:
        # CONCAT walks back from the extension (made after the first restart) to the song (made before it).
        body = {"continue_clip_id": extension["clip_id"], "task_id": extended["task_id"]}
        full = (await finish(again, clock, "CONCAT", body))["data"]["clips"][0]
        assert full["duration"] == pytest.approx(60 + extension["duration"])
        assert full["title"] == song.clip["title"]
        # The song, made two restarts ago, now links to this instance's origin, and its files are served.
        revived = (await fetch(again, song.task_id))["data"]["clips"][0]
        assert revived["audio_url"] == song.clip["audio_url"].replace(str(before.base_url).rstrip("/"), origin(again))
        assert (await again.get(revived["audio_url"])).headers["content-type"] == "audio/mpeg"


async def test_balances_and_owners_survive_a_restart_and_keys_are_not_stored(
    clock: ManualClock, state_path: Path
) -> None:
    failing = {"custom_mode": False, "gpt_description_prompt": "a song that fails sandbox:fail"}
    async with serving(Sandbox(clock=clock, state_path=state_path)) as before:
        song = await submit(before, "MUSIC", SONG)
        doomed = await submit(before, "MUSIC", failing)
        user_id = (await fetch(before, song))["user_id"]
        charged = (await before.get("/api/usage/token/")).json()["data"]
    assert (charged["total_used"], charged["total_available"]) == (80_000, 4_920_000)  # both charged up front

    async with serving(Sandbox(clock=clock, state_path=state_path)) as after:
        assert (await after.get("/api/usage/token/")).json()["data"] == charged
        clock.advance(10)
        assert (await fetch(after, doomed))["status"] == "FAILURE"
        refunded = (await after.get("/api/usage/token/")).json()["data"]
        assert (refunded["total_used"], refunded["total_available"]) == (40_000, 4_960_000)
        assert (await after.get("/v1/dashboard/billing/usage")).json()["total_usage"] == pytest.approx(8.0)
        assert (await fetch(after, song))["user_id"] == user_id
        async with httpx2.AsyncClient(base_url=origin(after), headers={"Authorization": "sk-other"}) as other:
            missing = await other.get(f"/suno/fetch/{song}")
            assert missing.json() == task_error("task_not_exist", "task_not_exist")

    assert KEY not in state_path.read_text()  # only the key's SHA-256 is stored


async def test_two_sandboxes_on_one_state_file_keep_and_answer_each_others_tasks(
    clock: ManualClock, state_path: Path
) -> None:
    """Two `--sandbox` servers on one home (one per MCP client): neither loses the other's tasks, either can
    answer about both, follow-ups may use the other's clips, and the balance counts both."""
    first, second = Sandbox(clock=clock, state_path=state_path), Sandbox(clock=clock, state_path=state_path)
    async with serving(first) as one, serving(second) as two:
        song = await make_song(one, clock)  # made through the first
        other = await submit(two, "MUSIC", {**SONG, "title": "The Second Door"})  # and one through the second

        assert (await fetch(two, song.task_id))["data"]["clips"][0]["title"] == song.clip["title"]
        batch = (await one.post("/suno/fetch", json={"ids": [song.task_id, other]})).json()["data"]
        assert [task["task_id"] for task in batch] == [song.task_id, other]
        extended = await finish(two, clock, "EXTEND", {**song.clip_ref("continue_clip_id"), "continue_at": 30})
        assert extended["status"] == "SUCCESS"
        file_link = song.clip["audio_url"].replace(origin(one), origin(two))
        assert (await two.get(file_link)).headers["content-type"] == "audio/mpeg"
        usage = [(await http.get("/api/usage/token/")).json()["data"]["total_used"] for http in (one, two)]
        assert usage == [120_000, 120_000]  # three tasks of one key, whichever sandbox made them

    saved = json.loads(state_path.read_text())
    assert sorted(task["task_id"] for task in saved["tasks"]) == sorted([song.task_id, other, extended["task_id"]])
    async with serving(Sandbox(clock=clock, state_path=state_path)) as restarted:
        for task_id in (song.task_id, other, extended["task_id"]):
            assert (await fetch(restarted, task_id))["status"] == "SUCCESS"


async def test_a_sandbox_reads_the_shared_state_file_only_when_another_wrote_it(
    clock: ManualClock, state_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[Path] = []
    read_bytes = Path.read_bytes

    def counted(path: Path) -> bytes:
        reads.append(path)
        return read_bytes(path)

    async with serving(Sandbox(clock=clock, state_path=state_path)) as http:
        task_id = await submit(http, "MUSIC", SONG)
        monkeypatch.setattr(Path, "read_bytes", counted)
        for _ in range(3):
            await fetch(http, task_id)
            assert (await http.post("/suno/fetch", json={"ids": ["task_unknown"]})).json()["data"] == []
        assert reads == []  # unknown ids, an unchanged file: nothing read


async def test_a_save_that_could_not_be_written_still_hands_over_what_others_wrote(
    clock: ManualClock, state_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A save reads what another sandbox wrote, then fails to write (a full disk): the next save must still hand
    that over and keep its accounts, or the file names an owner it does not hold and is set aside on restart."""
    async with serving(Sandbox(clock=clock, state_path=state_path)) as one:
        song = await make_song(one, clock)
    other = StateFile(state_path)  # another sandbox's store, which has not read the file yet

    def disk_full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    with monkeypatch.context() as patched:
        patched.setattr(_store, "_write_atomically", disk_full)
        with pytest.raises(OSError, match="No space left"):
            other.save(next_row_id=1, accounts={})
    news = other.save(next_row_id=1, accounts={})

    assert song.task_id in news.tasks and list(news.accounts) == [song_owner(state_path)]
    async with serving(Sandbox(clock=clock, state_path=state_path)) as restarted:
        assert (await fetch(restarted, song.task_id))["status"] == "SUCCESS"


def song_owner(state_path: Path) -> str:
    (account,) = json.loads(state_path.read_text())["accounts"]
    return account["key_sha256"]


async def test_a_sandbox_whose_state_folder_is_removed_keeps_answering_from_memory(
    clock: ManualClock, state_path: Path
) -> None:
    async with serving(Sandbox(clock=clock, state_path=state_path)) as http:
        task_id = await submit(http, "MUSIC", SONG)
        shutil.rmtree(state_path.parent)

        assert (await fetch(http, task_id))["task_id"] == task_id


def _broken_state() -> bytes:
    """A well-formed version-1 file whose task belongs to no account."""
    task: dict[str, object] = {
        "row_id": 1, "task_id": "task_x", "upstream_id": "u", "owner": "nobody", "action": "MUSIC", "quota": 1,
        "submitted_at": 0, "accepted_at": 0, "started_at": 0, "finishes_at": 0, "outcome": "success",
        "fail_reason": "", "result": {}, "clips": [], "media": {},
    }  # fmt: skip
    state: dict[str, object] = {"format": "ccapi-suno-mcp sandbox state", "version": 1, "next_row_id": 2}
    state.update(accounts=[], tasks=[task])
    return json.dumps(state).encode()


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{truncated",
        b"\xff\xfe not utf-8",
        b"[]",
        b'{"format": "ccapi-suno-mcp sandbox state", "version": 99, "tasks": []}',
        b'{"format": "ccapi-suno-mcp sandbox state", "version": 1, "next_row_id": "one"}',
        _broken_state(),
    ],
    ids=["empty", "truncated", "binary", "not-an-object", "future-version", "wrong-types", "unknown-owner"],
)
async def test_an_unreadable_state_file_is_logged_set_aside_and_replaced_by_a_fresh_state(
    clock: ManualClock,
    state_path: Path,
    content: bytes,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state_path.parent.mkdir()
    state_path.write_bytes(content)
    with caplog.at_level(logging.ERROR, logger="ccapi_suno_mcp.sandbox"):
        sandbox = Sandbox(clock=clock, state_path=state_path)
    assert [record.levelno for record in caplog.records] == [logging.ERROR]
    assert str(state_path) in caplog.text and "starts afresh" in caplog.text
    assert state_path.with_name("state.json.corrupt").read_bytes() == content  # kept for a post-mortem
    assert json.loads(state_path.read_text())["tasks"] == []  # a fresh state took its place at once

    async with serving(sandbox) as http:
        task_id = await submit(http, "MUSIC", SONG)
        assert (await fetch(http, task_id))["id"] == 1
    assert capsys.readouterr().out == ""  # logs go to logging (stderr), never stdout


async def test_the_state_file_is_versioned_json_replaced_atomically_with_origin_free_links(
    clock: ManualClock, state_path: Path
) -> None:
    sandbox = Sandbox(clock=clock, state_path=state_path)
    assert sandbox.state_path == state_path
    first = state_path.open("rb")  # written at once, in a folder made for it; held open, its inode stays its own
    async with serving(sandbox) as http:
        for _ in range(3):
            await submit(http, "MUSIC", SONG)
        await submit(http, "LYRICS", {"prompt": "rivers"})
    with first:  # a new file was renamed over the old one, which was never rewritten in place
        assert os.fstat(first.fileno()).st_nlink == 0
        assert json.loads(first.read())["tasks"] == []
    assert os.listdir(state_path.parent) == ["state.json"]  # no temporary file left behind

    text = state_path.read_text()
    saved = json.loads(text)
    assert (saved["format"], saved["version"], saved["next_row_id"]) == ("ccapi-suno-mcp sandbox state", 1, 5)
    assert [task["action"] for task in saved["tasks"]] == ["MUSIC", "MUSIC", "MUSIC", "LYRICS"]
    assert len(saved["accounts"]) == 1
    assert "127.0.0.1" not in text  # links are stored origin-relative
    assert saved["tasks"][0]["result"]["clips"][0]["audio_url"].startswith("/media/")


async def test_a_failed_save_keeps_the_previous_file_whole_and_the_sandbox_serving(
    clock: ManualClock, state_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def disk_full(source: object, target: object) -> None:
        raise OSError(28, "No space left on device")

    sandbox = Sandbox(clock=clock, state_path=state_path)
    async with serving(sandbox) as http:
        await submit(http, "MUSIC", SONG)
        saved = state_path.read_bytes()
        monkeypatch.setattr(os, "replace", disk_full)
        with caplog.at_level(logging.ERROR, logger="ccapi_suno_mcp.sandbox"):
            task_id = await submit(http, "MUSIC", SONG)
        assert (await fetch(http, task_id))["id"] == 2  # accepted and served from memory
    assert "could not save the state" in caplog.text and "No space left" in caplog.text
    assert state_path.read_bytes() == saved
    assert os.listdir(state_path.parent) == ["state.json"]


async def test_links_are_rendered_only_where_links_live(client: httpx2.AsyncClient, clock: ManualClock) -> None:
    odd = {**SONG, "title": "/media/not-a-link", "prompt": "/stream/not a link either"}
    record = await finish(client, clock, "MUSIC", odd)
    clip = record["data"]["clips"][0]
    assert (clip["title"], clip["lyrics"]) == ("/media/not-a-link", "/stream/not a link either")
    assert clip["audio_url"].startswith(f"{origin(client)}/media/")
