"""The JSON sidecar beside each saved song: how it was made, in a form people and scripts can read."""

from __future__ import annotations

import json
from typing import Any

from ._facts import SongFacts

__all__ = ["SIDECAR_FORMAT", "sidecar_json"]

SIDECAR_FORMAT = "ccapi-suno-mcp song"


def sidecar_json(facts: SongFacts, *, files: dict[str, str]) -> bytes:
    """The sidecar of a song: its facts, lineage, cost and source links; `files` names the files saved with it."""
    document: dict[str, Any] = {
        "format": SIDECAR_FORMAT,
        "version": 1,
        "title": facts.title,
        "artist": facts.artist,
        "album": facts.album,
        "style": facts.style,
        "lyrics": facts.lyrics,
        "model": facts.model,
        "prompt": facts.prompt,
        "description": facts.description,
        "clip_id": facts.clip_id,
        "task_id": facts.task_id,
        "lineage": {
            "action": facts.action,
            "tool": facts.tool,
            "parent_task_id": facts.parent_task_id,
            "parent_clip_id": facts.parent_clip_id,
        },
        "duration": facts.duration,
        "created_at": facts.created_at,
        "cost": {"quota": facts.quota, "usd": facts.usd},
        "source_urls": facts.source_urls,
        "synced_lyrics": [{"start": line.start, "text": line.text} for line in facts.synced_lyrics] or None,
        "files": files,
    }
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()
