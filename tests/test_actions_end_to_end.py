"""Every action tool, called as a client would, is accepted by the sandbox and finishes, in both eras."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ccapi_suno_mcp.catalogue import ACTIONS
from harness import MODES, Harness, Mode, running

SPECS = {spec.tool: spec for spec in ACTIONS if spec.enabled}


def examples(clips: list[str], lyrics_clip: str) -> dict[str, dict[str, Any]]:
    """Valid arguments for each action, using clips of a finished song."""
    clip = clips[0]
    return {
        "suno_generate_music": {"lyrics": "[Verse]\nRain on the window", "title": "Window", "tags": "folk"},
        "suno_generate_lyrics": {"prompt": "a song about the sea"},
        "suno_extend_music": {"clip_id": clip, "continue_at": 0.5, "description": "a bright bridge"},
        "suno_create_cover": {"clip_id": clip, "tags": "jazz", "audio_weight": 0.6},
        "suno_extract_stems": {"clip_id": clip},
        "suno_extract_all_stems": {"clip_id": clip},
        "suno_add_vocals": {"clip_id": clip, "lyrics": "[Verse]\nla la la"},
        "suno_add_instrumental": {"clip_id": clip, "tags": "lofi beat"},
        "suno_replace_section": {"clip_id": clip, "start_s": 0.1, "end_s": 0.6, "section_lyrics": "new words"},
        "suno_remaster_music": {"clip_id": clip, "variation": "subtle"},
        "suno_mashup_music": {"clip_ids": clips[:2], "description": "blend these two"},
        "suno_sample_section": {"clip_id": clip, "start_s": 0.1, "end_s": 0.5, "description": "a funk song"},
        "suno_generate_sounds": {"prompt": "rain on a tin roof", "loop": True, "bpm": 90, "key": "Am"},
        "suno_generate_midi": {"clip_id": clip},
        "suno_upload_audio": {"url": "https://example.com/my-song.mp3"},
        "suno_concatenate_music": {"clip_id": clip},
        "suno_get_aligned_lyrics": {"clip_id": lyrics_clip},
        "suno_generate_music_video": {"clip_id": clip},
        "suno_export_wav": {"clip_id": clip},
        "suno_detect_bpm": {"clip_id": clip},
        "suno_extract_vocals": {"clip_id": clip, "start_s": 0.0, "end_s": 0.5},
        "suno_upsample_tags": {"tags": "jazz, smooth"},
    }


async def a_song(harness: Harness) -> list[str]:
    song = await harness.call("suno_generate_music", {"lyrics": "[Verse]\nQuiet street", "title": "Quiet"})
    waited = await harness.finished([song["task_id"]])
    return [clip["clip_id"] for clip in waited["tasks"][0]["clips"]]


def test_every_action_has_an_end_to_end_example() -> None:
    assert set(examples(["a", "b"], "c")) == set(SPECS)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("tool", sorted(SPECS))
async def test_each_action_tool_submits_its_action_and_finishes(tmp_path: Path, tool: str, mode: Mode) -> None:
    async with running(tmp_path, mode=mode) as harness:
        clips = await a_song(harness)
        submitted = await harness.call(tool, examples(clips, clips[0])[tool])
        record = harness.sandbox.task(submitted["task_id"])
        waited = await harness.finished([submitted["task_id"]])
    spec = SPECS[tool]
    assert submitted["tool"] == tool
    assert record["action"] == spec.action
    [task] = waited["tasks"]
    assert task["status"] == "SUCCESS", task
    assert task["clips"] or task["result"], task
    if spec.follows_clip:
        assert task["parent_clip_id"] == clips[0]


@pytest.mark.anyio
@pytest.mark.parametrize("follow_up", [("suno_extract_stems", {}), ("suno_extend_music", {"continue_at": 0.5})])
async def test_a_clip_can_still_be_followed_up_after_its_music_video_is_made(
    tmp_path: Path, follow_up: tuple[str, dict[str, Any]]
) -> None:
    tool, options = follow_up
    async with running(tmp_path) as harness:
        song = await harness.call("suno_generate_music", {"lyrics": "[Verse]\nQuiet street", "title": "Quiet"})
        [made] = (await harness.finished([song["task_id"]]))["tasks"]
        clip = made["clips"][0]["clip_id"]
        video = await harness.call("suno_generate_music_video", {"clip_id": clip})
        await harness.finished([video["task_id"]])
        submitted = await harness.call(tool, {"clip_id": clip, **options})
        [task] = (await harness.finished([submitted["task_id"]]))["tasks"]
        saved = await harness.call("suno_download", {"clip_id": clip, "kind": "video"})
    assert (submitted["parent_task_id"], submitted["parent_clip_id"]) == (song["task_id"], clip)
    assert task["status"] == "SUCCESS", task
    assert Path(saved["path"]).read_bytes()[4:8] == b"ftyp"
    assert saved["task_id"] == song["task_id"]
