"""What is known of a song, gathered once from the ledger, for its tags, its sidecar and its release folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ccapi_suno_mcp.ledger import ClipRecord, TaskRecord

from ._lyrics import TimedLine

__all__ = ["Cover", "SongFacts", "song_facts"]

# Where the request body keeps the prompt, the description and the model (CCAPI's wire names first, then the
# names of peers; the body is whatever was sent, overrides included).
_PROMPT_KEYS = ("prompt", "lyrics")
_DESCRIPTION_KEYS = ("gpt_description_prompt", "description")
_MODEL_KEYS = ("mv", "model", "model_name", "major_model_version")


@dataclass(frozen=True)
class Cover:
    """Cover art fetched from the clip's image link."""

    data: bytes
    content_type: str


@dataclass(frozen=True)
class SongFacts:
    """A clip and the task that made it, as a music library would want them."""

    clip_id: str | None
    task_id: str | None
    title: str | None
    artist: str
    album: str | None
    style: str | None
    lyrics: str | None
    model: str | None
    prompt: str | None
    description: str | None
    action: str | None
    tool: str | None
    parent_task_id: str | None
    parent_clip_id: str | None
    duration: float | None
    created_at: str | None
    quota: int | None
    usd: float | None
    source_urls: dict[str, str]
    synced_lyrics: list[TimedLine] = field(default_factory=lambda: list[TimedLine]())

    @property
    def date(self) -> str | None:
        """The creation date (YYYY-MM-DD) from CCAPI's ISO time, when it has one."""
        text = (self.created_at or "")[:10]
        return text if len(text) == 10 and text[4] == "-" and text[7] == "-" else None

    @property
    def genre(self) -> str | None:
        """The first style tag: the genre a library sorts by."""
        first = (self.style or "").split(",")[0].strip()
        return first or None


def _first_text(document: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    return next((value.strip() for key in keys if isinstance(value := document.get(key), str) and value.strip()), None)


def song_facts(
    clip: ClipRecord | None,
    task: TaskRecord | None,
    *,
    artist: str,
    album: str | None,
    quota_per_usd: int,
    synced_lyrics: list[TimedLine] | None = None,
) -> SongFacts:
    """The facts of `clip` (or of a task-level file, `clip` None) made by `task`."""
    request: dict[str, Any] = task.request if task is not None else {}
    raw: dict[str, Any] = clip.raw if clip is not None else {}
    quota = None if task is None else task.charged_quota if task.charged_quota is not None else task.quota
    urls = {
        name: url
        for name, url in (
            ("audio_url", clip.audio_url if clip else None),
            ("image_url", clip.image_url if clip else None),
            ("video_url", clip.video_url if clip else None),
            ("result_url", task.result_url if task else None),
        )
        if url
    }
    return SongFacts(
        clip_id=clip.clip_id if clip else None,
        task_id=(task.task_id if task else None) or (clip.task_id if clip else None),
        title=(clip.title if clip else None) or (task.title if task else None),
        artist=artist,
        album=album,
        style=(clip.tags if clip else None) or _first_text(request, ("tags",)),
        lyrics=clip.lyrics if clip and clip.lyrics else None,
        model=_first_text(raw, _MODEL_KEYS) or _first_text(request, _MODEL_KEYS),
        prompt=_first_text(request, _PROMPT_KEYS),
        description=_first_text(request, _DESCRIPTION_KEYS),
        action=task.action if task else None,
        tool=task.tool if task else None,
        parent_task_id=task.parent_task_id if task else None,
        parent_clip_id=task.parent_clip_id if task else None,
        duration=clip.duration if clip else None,
        created_at=clip.created_at if clip else None,
        quota=quota,
        usd=round(quota / quota_per_usd, 6) if quota is not None else None,
        source_urls=urls,
        synced_lyrics=synced_lyrics or [],
    )
