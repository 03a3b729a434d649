"""What each action produces: clips, media links and the small JSON results of the quick actions."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, cast
from urllib.parse import unquote, urlsplit

from ._media import MediaItem, MediaKind, midi_notes
from ._tasks import Clip
from ._words import derive_title, style_tags, write_lyrics

__all__ = ["BUILDERS", "Body", "Builder", "Job", "Studio", "TaskFails", "previews", "primary_link", "vox_window"]

Body = dict[str, object]

STEM_NAMES = (
    "Vocals",
    "Backing Vocals",
    "Drums",
    "Bass",
    "Guitar",
    "Keyboard",
    "Strings",
    "Brass",
    "Woodwinds",
    "Percussion",
    "Synth",
    "FX",
)
_STYLE_DETAILS = (
    "warm analog production",
    "wide stereo image",
    "expressive dynamics",
    "polished modern mix",
    "intimate close-mic vocals",
    "lush layered harmonies",
    "punchy tight low end",
    "airy reverb tails",
    "steady driving groove",
    "cinematic build-ups",
)


class TaskFails(Exception):
    """Raised by a builder when the task is accepted but will end in FAILURE (the reason is shown to users)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Studio:
    """Makes one task's outputs: new ids, clip documents and media links (collected so they can be served).

    Links are origin-relative paths (`/media/{name}`, `/stream/{clip_id}`) under keys named `url` or ending in
    `_url`: the sandbox prefixes its current origin whenever it serves a record, so links survive a restart on
    another port.
    """

    def __init__(self, *, task_id: str, owner: str, created_at: float) -> None:
        self.rng = random.Random(task_id)
        self.task_id = task_id
        self.owner = owner
        self.produced: list[Clip] = []
        self.media: dict[str, MediaItem] = {}
        self._created_at = _iso_millis(created_at)

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def link(self, name: str, kind: MediaKind, seed: str) -> str:
        self.media[name] = MediaItem(kind, seed)
        return f"/media/{name}"

    def clip(
        self,
        body: Body,
        *,
        title: str,
        tags: str,
        lyrics: str,
        duration: float,
        extends: tuple[str, float] | None = None,
    ) -> dict[str, Any]:
        """A new completed clip in the seed page's clip shape, remembered for follow-ups."""
        clip_id = self.new_id()
        document: dict[str, Any] = {
            "clip_id": clip_id,
            "state": "completed",
            "title": title,
            "tags": tags,
            "lyrics": lyrics,
            "image_url": self.link(f"image_{clip_id}.png", "image", clip_id),
            "audio_url": self.link(f"{clip_id}.mp3", "audio", clip_id),
            "video_url": None,
            "created_at": self._created_at,
            "duration": round(duration, 2),
            "negative_tags": _text(body, "negative_tags") or None,
            "style_weight": _number(body, "style_weight"),
            "weirdness_constraint": _number(body, "weirdness_constraint"),
            "audio_weight": _number(body, "audio_weight"),
        }
        self.produced.append(
            Clip(clip_id, self.task_id, self.owner, title, tags, lyrics, document["duration"], document, extends)
        )
        return document


def previews(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The in-progress view of a result's clips: preview streams, not the final files."""
    clips: list[dict[str, Any]] = result.get("clips", [])
    return [
        {**clip, "state": "streaming", "audio_url": f"/stream/{clip['clip_id']}", "duration": None} for clip in clips
    ]


def primary_link(result: dict[str, Any]) -> str | None:
    """`result_url`: the video for a music video, else the first clip's audio, else the main file link."""
    if isinstance(video := result.get("video_url"), str):
        return video
    clips = result.get("clips")
    if isinstance(clips, list) and clips:
        return cast(str, cast(list[dict[str, Any]], clips)[0]["audio_url"])
    links = (result.get(key) for key in ("wav_url", "midi_url", "audio_url"))
    return next((link for link in links if isinstance(link, str)), None)


@dataclass(frozen=True)
class Job:
    """Everything a builder needs: the request body, the referenced clips, and a way to find older clips."""

    body: Body
    sources: Sequence[Clip]
    studio: Studio
    find_clip: Callable[[str], Clip | None]


Builder = Callable[[Job], dict[str, Any]]


def _text(body: Body, name: str) -> str:
    value = body.get(name)
    return value.strip() if isinstance(value, str) else ""


def _number(body: Body, name: str) -> float | None:
    value = body.get(name)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _iso_millis(moment: float) -> str:
    stamp = datetime.fromtimestamp(moment, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class _Song:
    title: str
    tags: str
    lyrics: str


def _song(job: Job, *, title_suffix: str = "", keep_source_lyrics: bool = False) -> _Song:
    """Title, tags and lyrics for a generation, from the body first and the source clip second."""
    body, rng = job.body, job.studio.rng
    source = job.sources[0] if job.sources else None
    description = _text(body, "gpt_description_prompt")
    prompt = _text(body, "prompt")
    instrumental = body.get("make_instrumental") is True
    if instrumental:
        lyrics = ""
    elif prompt and (body.get("custom_mode") is not False or not description):
        lyrics = prompt
    elif description:
        lyrics = write_lyrics(description, rng)
    else:
        lyrics = source.lyrics if source and keep_source_lyrics else write_lyrics(prompt, rng)
    title = _text(body, "title") or (f"{source.title}{title_suffix}" if source else derive_title(description or prompt))
    tags = _text(body, "tags") or (source.tags if source else style_tags(description or prompt, rng, instrumental))
    return _Song(title, tags, lyrics)


def _clips(job: Job, songs: Sequence[_Song], durations: Sequence[float], **extra: Any) -> dict[str, Any]:
    clips = [
        job.studio.clip(job.body, title=song.title, tags=song.tags, lyrics=song.lyrics, duration=length, **extra)
        for song, length in zip(songs, durations, strict=True)
    ]
    return {"clips": clips}


def _lengths(job: Job, low: float, high: float, count: int = 2) -> list[float]:
    return [job.studio.rng.uniform(low, high) for _ in range(count)]


def _source_lengths(job: Job, count: int = 2) -> list[float]:
    return [job.sources[0].duration] * count


def build_music(job: Job) -> dict[str, Any]:
    song = _song(job)
    return _clips(job, [song, song], _lengths(job, 120, 240))


def build_extend(job: Job) -> dict[str, Any]:
    song = _song(job, title_suffix=" (Extended)")
    at = _number(job.body, "continue_at") or 0.0
    return _clips(job, [song, song], _lengths(job, 30, 90), extends=(job.sources[0].clip_id, at))


def _variation(title_suffix: str, *, count: int = 2) -> Builder:
    """Builders that rework a source clip into `count` clips of the same length."""

    def build(job: Job) -> dict[str, Any]:
        song = _song(job, title_suffix=title_suffix, keep_source_lyrics=True)
        return _clips(job, [song] * count, _source_lengths(job, count))

    return build


def build_mashup(job: Job) -> dict[str, Any]:
    first, second = job.sources
    song = _song(job)
    if not _text(job.body, "title"):
        song = _Song(f"{first.title} x {second.title}", song.tags, song.lyrics)
    if not _text(job.body, "tags"):
        song = _Song(song.title, f"{first.tags}, {second.tags}", song.lyrics)
    return _clips(job, [song, song], [(first.duration + second.duration) / 2] * 2)


def build_sample(job: Job) -> dict[str, Any]:
    song = _song(job, title_suffix=" (Sampled)")
    return _clips(job, [song, song], _lengths(job, 120, 240))


def build_sounds(job: Job) -> dict[str, Any]:
    prompt = _text(job.body, "prompt")
    details = ["sound effect"]
    if job.body.get("loop") is True:
        details.append("loop")
    if (bpm := _number(job.body, "bpm")) is not None:
        details.append(f"{bpm:g} bpm")
    if key := _text(job.body, "key"):
        details.append(f"key of {key}")
    song = _Song(derive_title(prompt, "Sound"), _text(job.body, "tags") or ", ".join(details), "")
    return _clips(job, [song, song], _lengths(job, 2, 10))


def _stems(names: Sequence[str]) -> Builder:
    def build(job: Job) -> dict[str, Any]:
        source = job.sources[0]
        songs = [
            _Song(f"{source.title} ({name})", source.tags, source.lyrics if "Vocals" in name else "") for name in names
        ]
        return _clips(job, songs, _source_lengths(job, len(names)))

    return build


def build_concat(job: Job) -> dict[str, Any]:
    """Join an extension with its ancestors: each ancestor contributes up to where it was extended."""
    clip = job.sources[0]
    duration, lyrics, title = clip.duration, [clip.lyrics], clip.title
    while clip.extends is not None:
        parent = job.find_clip(clip.extends[0])
        if parent is None:
            break
        duration += clip.extends[1]
        lyrics.insert(0, parent.lyrics)
        title = parent.title
        clip = parent
    song = _Song(title, clip.tags, "\n\n".join(part for part in lyrics if part))
    return _clips(job, [song], [duration])


def build_lyrics(job: Job) -> dict[str, Any]:
    prompt, rng = _text(job.body, "prompt"), job.studio.rng
    title = derive_title(prompt)
    return {
        "results": [
            {"title": title, "lyrics": write_lyrics(prompt, rng)},
            {"title": f"{title} (Take 2)", "lyrics": write_lyrics(prompt, rng)},
        ]
    }


def build_midi(job: Job) -> dict[str, Any]:
    clip_id = job.sources[0].clip_id
    notes = [
        {"pitch": note.pitch, "start": note.start, "end": note.end, "velocity": note.velocity}
        for note in midi_notes(clip_id)
    ]
    return {
        "midi_url": job.studio.link(f"{clip_id}.mid", "midi", clip_id),
        "instruments": [{"name": "Piano", "notes": notes}],
    }


def build_upload(job: Job) -> dict[str, Any]:
    name = PurePosixPath(unquote(urlsplit(_text(job.body, "url")).path)).stem or "Uploaded Audio"
    result = _clips(job, [_Song(name, "", "")], _lengths(job, 30, 180, count=1))
    return {"clip_id": result["clips"][0]["clip_id"], **result}


def build_aligned_lyrics(job: Job) -> dict[str, Any]:
    source = job.sources[0]
    lines = [line.split() for line in source.lyrics.splitlines() if line.strip() and not line.strip().startswith("[")]
    words = [(word, number) for number, line in enumerate(lines, start=1) for word in line]
    if not words:
        raise TaskFails("The clip has no lyrics to align.")
    step = min(0.6, max(source.duration - 1.0, 1.0) / len(words))
    alignment = [
        {"word": word, "start_s": round(0.5 + i * step, 2), "end_s": round(0.5 + (i + 0.8) * step, 2), "line": line}
        for i, (word, line) in enumerate(words)
    ]
    return {"alignment": alignment}


def build_video(job: Job) -> dict[str, Any]:
    source = job.sources[0]
    video_url = job.studio.link(f"{source.clip_id}.mp4", "video", source.clip_id)
    return {"video_url": video_url, "clips": [{**source.document, "video_url": video_url}]}


def build_wav(job: Job) -> dict[str, Any]:
    clip_id = job.sources[0].clip_id
    return {"wav_url": job.studio.link(f"wav_{clip_id}.wav", "wav", clip_id)}


def build_bpm(job: Job) -> dict[str, Any]:
    rng = random.Random(job.sources[0].clip_id)
    average = rng.uniform(80, 160)
    return {
        "average_bpm": round(average, 1),
        "max_bpm": round(average + rng.uniform(1, 4), 1),
        "min_bpm": round(average - rng.uniform(1, 4), 1),
    }


def build_vox(job: Job) -> dict[str, Any]:
    start, end = vox_window(job.body, job.sources[0])
    vox_id = job.studio.new_id()
    return {
        "vox_audio_id": vox_id,
        "audio_url": job.studio.link(f"{vox_id}.wav", "wav", vox_id),
        "vocal_start_s": start,
        "vocal_end_s": end,
    }


def vox_window(body: Body, source: Clip) -> tuple[float, float]:
    start = _number(body, "vocal_start_s") or 0.0
    end = _number(body, "vocal_end_s")
    return start, end if end is not None else min(source.duration, start + 30.0)


def build_upsample_tags(job: Job) -> dict[str, Any]:
    tags = _text(job.body, "tags")
    details = random.Random(tags).sample(_STYLE_DETAILS, 4)
    return {"upsampled_tags": f"{tags}, {', '.join(details)}"}


BUILDERS: dict[str, Builder] = {
    "MUSIC": build_music,
    "LYRICS": build_lyrics,
    "EXTEND": build_extend,
    "COVER": _variation(" (Cover)"),
    "STEMS": _stems(("Vocals", "Instrumental")),
    "STEMS_FULL": _stems(STEM_NAMES),
    "ADD_VOCALS": _variation(" (With Vocals)"),
    "ADD_INSTRUMENTAL": _variation(" (With Instrumental)"),
    "REPLACE_SECTION": _variation("", count=1),
    "REMASTER": _variation(" (Remastered)"),
    "MASHUP": build_mashup,
    "SAMPLE": build_sample,
    "SOUNDS": build_sounds,
    "MIDI": build_midi,
    "UPLOAD": build_upload,
    "CONCAT": build_concat,
    "ALIGNED_LYRICS": build_aligned_lyrics,
    "VIDEO": build_video,
    "WAV": build_wav,
    "BPM": build_bpm,
    "VOX": build_vox,
    "UPSAMPLE_TAGS": build_upsample_tags,
}
