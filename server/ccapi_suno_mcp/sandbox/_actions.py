"""The action catalogue (one table) and submit validation, in new-api's order and with its error codes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from ._results import BUILDERS, Body, Builder, vox_window
from ._tasks import Clip, TaskRecord

__all__ = ["ACTIONS", "ActionSpec", "RequestRejected", "validate_submit"]


class RequestRejected(Exception):
    """A submit the API refuses before creating a task: HTTP `status` with a new-api task error body."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _invalid(message: str) -> RequestRejected:
    return RequestRejected("invalid_request", message)


# Field checks: a problem description, or None when the value is acceptable.
Check = Callable[[object], str | None]


def _string(max_length: int | None = None) -> Check:
    def check(value: object) -> str | None:
        if not isinstance(value, str):
            return "must be a string"
        if max_length is not None and len(value) > max_length:
            return f"must be at most {max_length} characters"
        return None

    return check


def _number(low: float | None = None, high: float | None = None) -> Check:
    def check(value: object) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a number"
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
            return f"must be {bounds}"
        return None

    return check


def _flag(value: object) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _choice(*allowed: str) -> Check:
    def check(value: object) -> str | None:
        return None if value in allowed else f"must be one of {', '.join(allowed)}"

    return check


def _http_url(value: object) -> str | None:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")) or len(value) < 12:
        return "must be an http(s) URL"
    return None


def _clip_pair(value: object) -> str | None:
    if not isinstance(value, list):
        return "must be a list of exactly 2 clip ids"
    items = cast(list[object], value)
    if len(items) != 2 or not all(isinstance(item, str) and item.strip() for item in items):
        return "must be a list of exactly 2 clip ids"
    return None


_WEIGHT = _number(0, 1)
_SECONDS = _number(0)

# Types of every field any action knows; checked whenever present (null counts as absent). Unknown fields pass.
FIELD_CHECKS: dict[str, Check] = {
    "custom_mode": _flag,
    "prompt": _string(5000),
    "gpt_description_prompt": _string(400),
    "mv": _string(),
    "title": _string(80),
    "tags": _string(1000),
    "negative_tags": _string(1000),
    "make_instrumental": _flag,
    "vocal_gender": _choice("f", "m"),
    "style_weight": _WEIGHT,
    "weirdness_constraint": _WEIGHT,
    "audio_weight": _WEIGHT,
    "task_id": _string(),
    "continue_clip_id": _string(),
    "clip_id": _string(),
    "sample_clip_id": _string(),
    "clip_ids": _clip_pair,
    "continue_at": _SECONDS,
    "infill_start_s": _SECONDS,
    "infill_end_s": _SECONDS,
    "infill_lyrics": _string(5000),
    "auto_concat": _flag,
    "overpainting_start_s": _SECONDS,
    "overpainting_end_s": _SECONDS,
    "variation_category": _choice("subtle", "normal", "high"),
    "chop_sample_start_s": _SECONDS,
    "chop_sample_end_s": _SECONDS,
    "loop": _flag,
    "bpm": _number(1, 300),
    "key": _string(8),
    "url": _http_url,
    "vocal_start_s": _SECONDS,
    "vocal_end_s": _SECONDS,
}

SINGLE_CLIP_FIELDS = ("continue_clip_id", "clip_id", "sample_clip_id")

# Cross-field rules run last, with the resolved source clips (in the order of the action's clip fields).
Rule = Callable[[Body, Sequence[Clip]], None]


def _present(body: Body, name: str) -> bool:
    value = body.get(name)
    return value is not None and not (isinstance(value, str) and not value.strip())


def _mode_prompt(body: Body, sources: Sequence[Clip]) -> None:
    needed = "prompt" if body.get("custom_mode") is True else "gpt_description_prompt"
    if not _present(body, needed):
        raise _invalid(f"{needed}: is required when custom_mode is {str(body.get('custom_mode')).lower()}")


def _lyrics_prompt(body: Body, sources: Sequence[Clip]) -> None:
    if not _present(body, "prompt"):
        raise RequestRejected("prompt_empty", "prompt is empty")


def _continue_at_inside_source(body: Body, sources: Sequence[Clip]) -> None:
    at, duration = body["continue_at"], sources[0].duration
    if isinstance(at, int | float) and at >= duration:
        raise _invalid(f"continue_at: must be less than the source clip's duration ({duration:g} s)")


def _ordered(start: str, end: str, *, within_source: bool = False) -> Rule:
    def rule(body: Body, sources: Sequence[Clip]) -> None:
        low, high = body.get(start), body.get(end)
        if not (isinstance(low, int | float) and isinstance(high, int | float)):
            return
        if high <= low:
            raise _invalid(f"{end}: must be greater than {start}")
        if within_source and high > sources[0].duration:
            raise _invalid(f"{end}: must not exceed the source clip's duration ({sources[0].duration:g} s)")

    return rule


def _vox_window(body: Body, sources: Sequence[Clip]) -> None:
    start, end = vox_window(body, sources[0])
    if end <= start:
        raise _invalid("vocal_end_s: must be greater than vocal_start_s")
    if end - start > 30:
        raise _invalid("vocal_end_s: the vocal window must be at most 30 seconds long")


@dataclass(frozen=True)
class ActionSpec:
    """One Suno action as CCAPI exposes it: `POST /suno/submit/{token}`."""

    token: str
    required: tuple[str, ...]
    quota: int
    """Quota units billed per accepted task (500000 = 1 USD)."""
    run_seconds: float
    """From submit to the end of the task, before dividing by the sandbox speed."""
    build: Builder
    rules: tuple[Rule, ...] = ()
    streams: bool = False
    """Whether `data.clips` shows streaming previews once the task is past half-way."""
    accept_message: str = ""

    @property
    def clip_fields(self) -> tuple[str, ...]:
        return tuple(name for name in self.required if name in (*SINGLE_CLIP_FIELDS, "clip_ids"))


_GENERATE = 4.0
_QUICK = 1.5
_SOURCE = ("continue_clip_id", "task_id")
_CLIP = ("clip_id", "task_id")
_OVERPAINT = _ordered("overpainting_start_s", "overpainting_end_s")
_INFILL = _ordered("infill_start_s", "infill_end_s", within_source=True)
_CHOP_RANGE = ("chop_sample_start_s", "chop_sample_end_s")
_CHOP = _ordered(*_CHOP_RANGE, within_source=True)


def _spec(
    token: str,
    required: tuple[str, ...],
    quota: int,
    run_seconds: float,
    *rules: Rule,
    streams: bool = False,
    accept_message: str = "",
) -> ActionSpec:
    return ActionSpec(token, required, quota, run_seconds, BUILDERS[token], rules, streams, accept_message)


# Quotas follow the upstream's credit ratios, scaled so MUSIC costs the 40000 of the seed page.
_TABLE = (
    _spec("MUSIC", ("custom_mode",), 40_000, _GENERATE, _mode_prompt, streams=True),
    _spec("LYRICS", (), 2_500, _QUICK, _lyrics_prompt),
    _spec("EXTEND", (*_SOURCE, "continue_at"), 40_000, _GENERATE, _continue_at_inside_source, streams=True),
    _spec("COVER", _SOURCE, 40_000, _GENERATE, streams=True),
    _spec("STEMS", _CLIP, 40_000, _GENERATE),
    _spec("STEMS_FULL", _CLIP, 200_000, 6.0),
    _spec("ADD_VOCALS", (*_SOURCE, "prompt"), 40_000, _GENERATE, _OVERPAINT, streams=True),
    _spec("ADD_INSTRUMENTAL", _SOURCE, 40_000, _GENERATE, _OVERPAINT, streams=True),
    _spec("REPLACE_SECTION", (*_CLIP, "infill_start_s", "infill_end_s"), 27_000, _GENERATE, _INFILL, streams=True),
    _spec("REMASTER", _SOURCE, 40_000, _GENERATE, streams=True),
    _spec("MASHUP", ("clip_ids", "custom_mode"), 27_000, _GENERATE, _mode_prompt, streams=True),
    _spec("SAMPLE", ("sample_clip_id", "task_id", *_CHOP_RANGE), 40_000, _GENERATE, _CHOP, streams=True),
    _spec("SOUNDS", ("prompt",), 40_000, _GENERATE, streams=True),
    _spec("MIDI", _CLIP, 10_000, _QUICK),
    _spec("UPLOAD", ("url",), 5_000, _QUICK),
    _spec("CONCAT", _SOURCE, 5_000, _QUICK),
    _spec("ALIGNED_LYRICS", _CLIP, 2_500, _QUICK),
    _spec("VIDEO", _CLIP, 15_000, 5.0),
    _spec("WAV", _CLIP, 5_000, _QUICK),
    _spec("BPM", _CLIP, 2_500, _QUICK),
    _spec("VOX", _CLIP, 2_500, _QUICK, _vox_window),
    _spec("UPSAMPLE_TAGS", ("tags",), 2_500, _QUICK, accept_message="task completed successfully"),
)

ACTIONS: dict[str, ActionSpec] = {spec.token: spec for spec in _TABLE}


def validate_submit(
    spec: ActionSpec,
    body: Body,
    *,
    owned_task: Callable[[str], TaskRecord | None],
    owned_clip: Callable[[str], Clip | None],
    clip_ready: Callable[[Clip], bool],
) -> list[Clip]:
    """Check a submit body; return the source clips it references (in the action's clip-field order).

    Raises:
        RequestRejected: with new-api's code (`invalid_request`, `prompt_empty`, `task_not_exist`).
    """
    if _present(body, "continue_clip_id") and not _present(body, "task_id"):
        raise _invalid("task id is empty")
    for name in spec.required:
        if not _present(body, name):
            raise _invalid(f"{name}: is required")
    for name, check in FIELD_CHECKS.items():
        if body.get(name) is not None and (problem := check(body[name])) is not None:
            raise _invalid(f"{name}: {problem}")
    task_id = body.get("task_id")
    if isinstance(task_id, str) and task_id.strip() and owned_task(task_id) is None:
        raise RequestRejected("task_not_exist", "task_not_exist")
    sources = [
        _resolve(clip_id, name, task_id, owned_clip, clip_ready)
        for name in spec.clip_fields
        for clip_id in _clip_ids(body[name])
    ]
    for rule in spec.rules:
        rule(body, sources)
    return sources


def _clip_ids(value: object) -> list[str]:
    items = cast(list[object], value) if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, str)]


def _resolve(
    clip_id: str,
    field: str,
    task_id: object,
    owned_clip: Callable[[str], Clip | None],
    clip_ready: Callable[[Clip], bool],
) -> Clip:
    clip = owned_clip(clip_id)
    if clip is None:
        raise _invalid(f"clip not found: {clip_id}")
    if not clip_ready(clip):
        raise _invalid(f"clip not ready: {clip_id} (the task that makes it has not succeeded)")
    if field in SINGLE_CLIP_FIELDS and isinstance(task_id, str) and clip.task_id != task_id:
        raise _invalid(f"{field}: clip {clip_id} was made by task {clip.task_id}, not {task_id}")
    return clip
