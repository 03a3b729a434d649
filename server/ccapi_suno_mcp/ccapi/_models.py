"""Response models: CCAPI's task record (new-api's TaskDto), clips and the balance.

They are lenient on purpose: unknown fields are kept, `data` is kept raw beside the typed
view, and a status string we do not know counts as pending.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ccapi_suno_mcp._json import json_list, json_object

logger = logging.getLogger(__name__)

__all__ = ["Balance", "Clip", "SunoTask", "TaskStatus", "clip_state_is_final", "lenient"]

_FINAL_CLIP_STATES = frozenset({"completed", "complete", "succeeded", "success"})
_FAILED_CLIP_STATES = frozenset({"failed", "error"})


_M = TypeVar("_M", bound=BaseModel)
_DROPPED_FIELDS_LOGGED: set[str] = set()


def lenient(model: type[_M], fields: dict[str, Any]) -> _M:
    """`model` from CCAPI's JSON, dropping fields of an unexpected type instead of failing on them.

    CCAPI's records are only partly documented; one odd field must not cost the whole record. The raw
    JSON stays available (`SunoTask.data`, the ledger's stored clip), so nothing is lost.

    Raises:
        ValidationError: when a required field itself is unusable.
    """
    try:
        return model.model_validate(fields)
    except ValidationError as error:
        bad = {str(item["loc"][0]) for item in error.errors() if item["loc"]}
        required = {name for name, field in model.model_fields.items() if field.is_required()}
        if bad & required or not bad:
            raise
        unseen = {f"{model.__name__}.{name}" for name in bad} - _DROPPED_FIELDS_LOGGED
        if unseen:  # once per field: CCAPI may have changed a type, and someone should hear of it
            _DROPPED_FIELDS_LOGGED.update(unseen)
            logger.warning("CCAPI sent fields of an unexpected type, read as absent: %s", ", ".join(sorted(unseen)))
        return model.model_validate({key: value for key, value in fields.items() if key not in bad})


def clip_state_is_final(state: str | None) -> bool:
    """Whether a clip `state` means finished (completed, succeeded...), as opposed to queued or streaming."""
    return (state or "").lower() in _FINAL_CLIP_STATES


class TaskStatus(StrEnum):
    """A task's status as CCAPI reports it; `UNKNOWN` stands for anything we do not know."""

    NOT_START = "NOT_START"
    SUBMITTED = "SUBMITTED"
    QUEUED = "QUEUED"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def parse(cls, value: str | None) -> TaskStatus:
        try:
            return cls((value or "").upper())
        except ValueError:
            return cls.UNKNOWN

    @property
    def is_terminal(self) -> bool:
        return self in (TaskStatus.SUCCESS, TaskStatus.FAILURE)


class Clip(BaseModel):
    """One clip of a task's result (`data.clips[]`), with the seed page's fields."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    clip_id: str
    state: str | None = None
    title: str | None = None
    tags: str | None = None
    lyrics: str | None = None
    image_url: str | None = None
    audio_url: str | None = None
    video_url: str | None = None
    created_at: str | None = None
    duration: float | None = None
    negative_tags: str | None = None
    style_weight: float | None = None
    weirdness_constraint: float | None = None
    audio_weight: float | None = None

    @field_validator("duration", "style_weight", "weirdness_constraint", "audio_weight", mode="before")
    @classmethod
    def _number_or_none(cls, value: Any) -> Any:
        # Peers send durations as decimal strings; an unreadable one is better absent than fatal.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return None
        return value

    @property
    def is_final(self) -> bool:
        """True when the clip is finished: its links are the real files, not a streaming preview."""
        return clip_state_is_final(self.state)

    @property
    def is_failed(self) -> bool:
        return (self.state or "").lower() in _FAILED_CLIP_STATES


class SunoTask(BaseModel):
    """A task record as `GET /suno/fetch/{id}` and `POST /suno/fetch` return it."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    task_id: str
    action: str = ""
    status: str = "UNKNOWN"
    progress: str | None = None
    fail_reason: str | None = None
    result_url: str | None = None
    platform: str | None = None
    quota: int | None = None
    submit_time: int | None = None
    start_time: int | None = None
    finish_time: int | None = None
    created_at: int | None = None
    updated_at: int | None = None
    properties: dict[str, Any] | None = None
    data: Any = Field(default=None, description="CCAPI's normalized result payload, kept as sent.")

    @property
    def state(self) -> TaskStatus:
        return TaskStatus.parse(self.status)

    @property
    def is_terminal(self) -> bool:
        return self.state.is_terminal

    @property
    def progress_percent(self) -> int | None:
        text = (self.progress or "").strip().rstrip("%")
        try:
            return max(0, min(100, round(float(text))))
        except ValueError:
            return None

    @property
    def clips(self) -> list[Clip]:
        """The clips in `data.clips`, skipping entries that are not clip objects."""
        data = json_object(self.data) or {}
        clips: list[Clip] = []
        for item in json_list(data.get("clips")) or []:
            fields = json_object(item)
            if fields is not None and isinstance(fields.get("clip_id"), str):
                clips.append(lenient(Clip, fields))
        return clips


class Balance(BaseModel):
    """What the account has left, in US dollars, from new-api's billing routes (inferred at CCAPI)."""

    model_config = ConfigDict(defer_build=True)

    remaining_usd: float | None = Field(description="Balance left; None when the account is unlimited.")
    used_usd: float | None = Field(default=None, description="Spent so far, when CCAPI says.")
    total_usd: float | None = Field(default=None, description="Remaining plus used, when CCAPI says.")
    unlimited: bool = Field(default=False, description="True when the key has no spending limit.")
