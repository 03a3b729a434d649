"""Saved songs carry their facts: tags inside the file, a JSON sidecar and an .lrc beside it, a release folder.

The end-to-end test runs the real server over stdio against the sandbox in its own process, and reads what it
saved with mutagen, exiftool and ffprobe, as a music library would.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mutagen.mp4 import MP4

from ccapi_suno_mcp.downloads import TimedLine, timed_lines
from ccapi_suno_mcp.settings import DEFAULT_ARTIST, Settings
from harness import Harness, call, running
from processes import sandbox_process, stdio_server
from tagreader import audio_after_tag, exiftool, exiftool_bytes, exiftool_user_texts, ffprobe, id3_frames

SONG = {"description": "a rainy indie pop song about umbrellas"}


async def _finish(client: Client, task_ids: list[str]) -> dict[str, Any]:
    waited = await call(client, "suno_wait_for_tasks", {"task_ids": task_ids, "timeout_seconds": 40})
    assert waited["all_done"], waited
    return waited


@pytest.mark.anyio
async def test_a_downloaded_song_reads_back_with_its_title_lyrics_cover_and_ids_and_the_audio_untouched(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    with anyio.fail_after(90):
        async with (
            sandbox_process("--speed", "20") as origin,
            Client(
                stdio_server(home, origin, tmp_path / "server.pid", env={"CCAPI_SUNO_ARTIST": "Rain Band"})
            ) as client,
        ):
            submitted = await call(client, "suno_generate_music", SONG)
            [task] = (await _finish(client, [submitted["task_id"]]))["tasks"]
            clip = task["clips"][0]
            aligned = await call(client, "suno_get_aligned_lyrics", {"clip_id": clip["clip_id"]})
            await _finish(client, [aligned["task_id"]])
            saved = await call(client, "suno_download", {"clip_id": clip["clip_id"]})
            async with httpx2.AsyncClient() as http:
                served = (await http.get(clip["audio_url"])).content
                cover = (await http.get(clip["image_url"])).content
    song = Path(saved["path"])
    assert saved["files"] == [str(song), str(song.with_suffix(".json")), str(song.with_suffix(".lrc"))]
    assert saved["notes"] == [] and song.suffix == ".mp3"
    assert audio_after_tag(song) == served  # only a tag was put in front of the frames CCAPI served

    frames = id3_frames(song)
    assert frames["TIT2"].text == [clip["title"]]
    assert frames["TPE1"].text == ["Rain Band"]
    assert frames["TCON"].text == [clip["tags"].split(",")[0]]
    assert frames["USLT::eng"].text == clip["lyrics"]
    assert frames["APIC:Cover"].data == cover and frames["APIC:Cover"].mime == "image/png"
    assert frames["TXXX:SUNO_CLIP_ID"].text == [clip["clip_id"]]
    assert frames["TXXX:SUNO_TASK_ID"].text == [task["task_id"]]
    assert frames["TXXX:SUNO_DESCRIPTION"].text == [SONG["description"]]
    synced = frames["SYLT::eng"].text
    assert len(synced) > 3 and all(isinstance(ms, int) for _, ms in synced)

    exif = exiftool(song)  # an independent reader
    assert (exif["Title"], exif["Artist"], exif["Lyrics"]) == (clip["title"], "Rain Band", clip["lyrics"])
    assert exiftool_bytes(exif["Picture"]) == cover
    assert f"(SUNO_CLIP_ID) {clip['clip_id']}" in exiftool_user_texts(song)
    probed = ffprobe(song)  # and another
    assert probed["format"]["format_name"] == "mp3"
    assert probed["format"]["tags"]["title"] == clip["title"]
    assert probed["format"]["tags"]["SUNO_CLIP_ID"] == clip["clip_id"]
    assert next(stream["codec_name"] for stream in probed["streams"]) == "mp3"

    sidecar = json.loads(song.with_suffix(".json").read_text(encoding="utf-8"))
    assert {key: sidecar[key] for key in ("title", "artist", "style", "lyrics", "clip_id", "task_id")} == {
        "title": clip["title"], "artist": "Rain Band", "style": clip["tags"], "lyrics": clip["lyrics"],
        "clip_id": clip["clip_id"], "task_id": task["task_id"],
    }  # fmt: skip
    assert sidecar["description"] == SONG["description"]
    assert sidecar["lineage"] == {"action": "MUSIC", "tool": "suno_generate_music", "parent_task_id": None,
                                  "parent_clip_id": None}  # fmt: skip
    assert sidecar["duration"] == clip["duration_seconds"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", sidecar["created_at"])  # CCAPI's time, as sent
    assert frames["TDRC"].text[0].get_text() == sidecar["created_at"][:10]
    assert sidecar["cost"]["quota"] > 0 and sidecar["cost"]["usd"] == sidecar["cost"]["quota"] / 500_000
    assert sidecar["source_urls"]["audio_url"] == clip["audio_url"]
    assert sidecar["files"] == {"audio": song.name, "sidecar": f"{song.stem}.json", "lrc": f"{song.stem}.lrc"}

    lrc = song.with_suffix(".lrc").read_text(encoding="utf-8").splitlines()
    sung = [line for line in clip["lyrics"].splitlines() if line.strip() and not line.startswith("[")]
    assert lrc[:2] == [f"[ti:{clip['title']}]", "[ar:Rain Band]"]
    assert [line.split("]", 1)[1] for line in lrc if line[1].isdigit()] == sung
    assert [text for text, _ in synced] == sung
    written = sorted(path.relative_to(home) for path in home.rglob("*") if path.is_file())
    assert [path for path in written if path.parts[0] == "downloads"] == sorted(
        Path("downloads") / name for name in (song.name, f"{song.stem}.json", f"{song.stem}.lrc")
    )


async def _made(harness: Harness, tool: str, clip_id: str) -> dict[str, Any]:
    submitted = await harness.call(tool, {"clip_id": clip_id})
    [task] = (await harness.finished([submitted["task_id"]]))["tasks"]
    return task


async def _song(harness: Harness) -> tuple[dict[str, Any], dict[str, Any]]:
    submitted = await harness.call("suno_generate_music", SONG)
    [task] = (await harness.finished([submitted["task_id"]]))["tasks"]
    return task, task["clips"][0]


@pytest.mark.anyio
async def test_a_release_folder_holds_every_file_of_the_clip_already_made_each_named_for_what_it_is(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as harness:
        task, clip = await _song(harness)
        stems = await _made(harness, "suno_extract_stems", clip["clip_id"])
        for tool in ("suno_get_aligned_lyrics", "suno_export_wav", "suno_generate_midi", "suno_generate_music_video"):
            await _made(harness, tool, clip["clip_id"])
        before = harness.sandbox.stats.submits
        release = await harness.call("suno_download", {"clip_id": clip["clip_id"], "kind": "release"})
        after = harness.sandbox.stats.submits
    folder = Path(release["path"])
    base = folder.name.rsplit("-", 1)[0]
    assert folder.parent == (tmp_path / "downloads").resolve() and folder.name.endswith(clip["clip_id"][:8])
    expected = {
        f"{base}.mp3", f"{base}.json", f"{base}.lrc", "cover.png", "lyrics.txt", f"{base}-wav.wav",
        f"{base}-midi.mid", f"{base}-video.mp4", f"{base}-stem-vocals.mp3", f"{base}-stem-instrumental.mp3",
    }  # fmt: skip
    assert {entry.name for entry in folder.iterdir()} == expected
    assert sorted(release["files"]) == sorted(str(folder / name) for name in expected)
    assert (release["missing"], release["notes"], release["kind"]) == ([], [], "release")
    assert after == before  # nothing billable was submitted
    assert (folder / "lyrics.txt").read_text(encoding="utf-8") == clip["lyrics"] + "\n"
    assert (folder / f"{base}-midi.mid").read_bytes()[:4] == b"MThd"
    wav = id3_frames(folder / f"{base}-wav.wav")  # the WAV export carries the same tags, in its id3 chunk
    assert (wav["TIT2"].text, wav["TXXX:SUNO_CLIP_ID"].text) == ([clip["title"]], [clip["clip_id"]])
    assert wav["APIC:Cover"].data == (folder / "cover.png").read_bytes()
    video: Any = MP4(folder / f"{base}-video.mp4")  # and the video in its MP4 atoms
    assert video.tags["\xa9nam"] == [clip["title"]] and video.tags["\xa9lyr"] == [clip["lyrics"]]
    assert bytes(video.tags["----:com.apple.iTunes:SUNO_CLIP_ID"][0]) == clip["clip_id"].encode()
    vocals = id3_frames(folder / f"{base}-stem-vocals.mp3")
    stem_ids = {stem["clip_id"] for stem in stems["clips"]}
    assert vocals["TXXX:SUNO_CLIP_ID"].text[0] in stem_ids
    assert (vocals["TALB"].text, vocals["TXXX:SUNO_PARENT_CLIP_ID"].text) == ([clip["title"]], [clip["clip_id"]])
    sidecar = json.loads((folder / f"{base}.json").read_text(encoding="utf-8"))
    assert sidecar["task_id"] == task["task_id"]
    assert set(sidecar["files"].values()) == expected - {f"{base}.json"} | {f"{base}.json"}


@pytest.mark.anyio
async def test_a_release_names_the_exports_not_made_yet_and_the_tools_that_make_them_without_submitting(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as harness:
        _, clip = await _song(harness)
        before = harness.sandbox.stats.submits
        release = await harness.client.call_tool("suno_download", {"clip_id": clip["clip_id"], "kind": "release"})
        again = await harness.call("suno_download", {"clip_id": clip["clip_id"], "kind": "release"})
        after = harness.sandbox.stats.submits
    assert release.structured_content is not None
    assert release.structured_content["missing"] == [
        "synced lyrics (.lrc): suno_get_aligned_lyrics",
        "wav: suno_export_wav",
        "midi: suno_generate_midi",
        "video: suno_generate_music_video",
        "stems: suno_extract_stems or suno_extract_all_stems",
    ]
    text = release.content[0].text if release.content[0].type == "text" else ""
    assert "Not made yet (billable, nothing was submitted): synced lyrics (.lrc): suno_get_aligned_lyrics;" in text
    assert after == before
    folder = Path(release.structured_content["path"])
    assert {entry.name for entry in folder.iterdir()} == {
        Path(path).name for path in release.structured_content["files"]
    }
    assert again["files"] == [] and "kept what was already there" in again["notes"][-1]  # kept, not replaced


@pytest.mark.anyio
async def test_the_artist_defaults_and_the_setting_is_read_from_the_environment(tmp_path: Path) -> None:
    assert Settings.from_env({"CCAPI_SUNO_HOME": str(tmp_path)}).artist == DEFAULT_ARTIST
    assert Settings.from_env({"CCAPI_SUNO_HOME": str(tmp_path), "CCAPI_SUNO_ARTIST": "  Night  Owls "}).artist == (
        "Night Owls"
    )
    async with running(tmp_path) as harness:
        _, clip = await _song(harness)
        saved = await harness.call("suno_download", {"clip_id": clip["clip_id"]})
    assert id3_frames(Path(saved["path"]))["TPE1"].text == [DEFAULT_ARTIST]


@pytest.mark.anyio
async def test_an_export_downloaded_by_its_task_id_carries_the_tags_of_its_song(tmp_path: Path) -> None:
    async with running(tmp_path) as harness:
        _, clip = await _song(harness)
        wav_task = await _made(harness, "suno_export_wav", clip["clip_id"])
        saved = await harness.call("suno_download", {"task_id": wav_task["task_id"], "kind": "wav"})
    frames = id3_frames(Path(saved["path"]))
    assert (frames["TIT2"].text, frames["TXXX:SUNO_CLIP_ID"].text) == ([clip["title"]], [clip["clip_id"]])
    assert saved["files"] == [saved["path"]]  # a sidecar sits beside a song, not beside each export


SUNO_WORDS = {
    "aligned_words": [
        {"word": "[Verse]\nHello ", "start_s": 1.0, "end_s": 1.4, "success": True},
        {"word": "rain\n", "start_s": 1.5, "end_s": 2.0},
        {"word": "Good", "start_s": 2.5, "end_s": 2.9},
        {"word": "bye", "start_s": 3.0, "end_s": 3.2},
    ]
}


@pytest.mark.parametrize(
    ("result", "lyrics", "expected"),
    [
        (SUNO_WORDS, None, [TimedLine(1.0, "Hello rain"), TimedLine(2.5, "Goodbye")]),
        (
            {
                "data": {
                    "alignment": [
                        {"word": "Hi", "start_s": "0.5", "line": 1},
                        {"word": "there", "start_s": 0.9, "line": 1},
                        {"word": "Bye", "start_s": 2, "line": 2},
                    ]
                }
            },
            None,
            [TimedLine(0.5, "Hi there"), TimedLine(2.0, "Bye")],
        ),
        (
            {"alignedLyrics": [{"time": 12.25, "text": "First line"}, {"time": 3, "text": "[Intro] Earlier"}]},
            None,
            [TimedLine(3.0, "Earlier"), TimedLine(12.25, "First line")],
        ),
        ([{"text": "ms", "start_ms": 1500}], None, [TimedLine(1.5, "ms")]),
        (
            {"words": [{"word": w, "start": i} for i, w in enumerate(["one", "two", "three", "four"])]},
            "[Verse]\none two\nthree four",
            [TimedLine(0.0, "one two"), TimedLine(2.0, "three four")],
        ),
        ({"alignment": "not a list"}, None, []),
        ({"alignment": [{"word": "no time"}]}, None, []),
        (None, None, []),
        ("text", None, []),
    ],
)
def test_aligned_lyrics_are_read_from_any_of_the_shapes_ccapi_might_send(
    result: Any, lyrics: str | None, expected: list[TimedLine]
) -> None:
    assert timed_lines(result, lyrics) == expected
