"""Task and clip records, and the task lifecycle computed from the clock (no background work)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast

__all__ = [
    "QUOTA_PER_USD",
    "STARTING_QUOTA",
    "Account",
    "Clip",
    "Outcome",
    "TaskRecord",
    "TaskStatus",
    "with_origin",
]

QUOTA_PER_USD = 500_000
STARTING_QUOTA = 10 * QUOTA_PER_USD

# Seconds (before dividing by speed) after submit at which a task is accepted upstream and starts running.
SUBMITTED_AFTER = 0.3
STARTED_AFTER = 0.6

TaskStatus = Literal["NOT_START", "SUBMITTED", "IN_PROGRESS", "SUCCESS", "FAILURE"]
Outcome = Literal["success", "failure", "stuck"]

_T = TypeVar("_T")


@dataclass
class Account:
    """One API key: a new-api user with its own tasks and balance."""

    key_sha256: str
    """The key's SHA-256 (hex): the sandbox never keeps keys themselves, so a saved state holds no secret."""
    user_id: int
    granted_quota: int = STARTING_QUOTA


@dataclass(frozen=True)
class Clip:
    """A clip the sandbox produced, remembered so follow-up actions can reference it."""

    clip_id: str
    task_id: str
    """Public id of the task that produced it (what follow-ups must send as `task_id`)."""
    owner: str
    """The owner's `Account.key_sha256`."""
    title: str
    tags: str
    lyrics: str
    duration: float
    document: dict[str, Any]
    """The clip exactly as it appears in the producing task's result (links origin-relative)."""
    extends: tuple[str, float] | None = None
    """For an extension: (source clip id, `continue_at`), so CONCAT can rebuild the full song."""


@dataclass
class TaskRecord:
    """One task, immutable once created: its state at any moment is computed from the clock.

    All times are absolute clock readings, so a task restored from a saved state keeps its timeline.
    """

    row_id: int
    task_id: str
    upstream_id: str
    owner: Account
    action: str
    quota: int
    submitted_at: float
    accepted_at: float
    started_at: float
    finishes_at: float
    outcome: Outcome
    fail_reason: str
    result: dict[str, Any]
    """The SUCCESS payload, links origin-relative (see `with_origin`)."""
    result_url: str | None
    streaming_clips: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    """What `data.clips` shows once past half-way (empty for actions that do not stream)."""

    def status(self, now: float) -> TaskStatus:
        if now < self.accepted_at:
            return "NOT_START"
        if now < self.started_at:
            return "SUBMITTED"
        if now < self.finishes_at or self.outcome == "stuck":
            return "IN_PROGRESS"
        return "FAILURE" if self.outcome == "failure" else "SUCCESS"

    def percent(self, now: float) -> int:
        """Progress while running: 1..99, rising linearly with elapsed time."""
        span = self.finishes_at - self.started_at
        done = (now - self.started_at) / span if span > 0 else 1.0
        return max(1, min(99, 1 + int(98 * done)))

    def render(self, now: float, origin: str) -> dict[str, Any]:
        """The TaskDto as `GET /suno/fetch/{id}` returns it at time `now` (the seed page's field set).

        Links become absolute URLs under `origin` (the sandbox's current address).
        """
        status = self.status(now)
        record: dict[str, Any] = {
            "id": self.row_id,
            "created_at": int(self.submitted_at),
            "updated_at": int(self.submitted_at),
            "task_id": self.task_id,
            "platform": "suno",
            "user_id": self.owner.user_id,
            "group": "suno-A",
            "channel_id": 27,
            "quota": self.quota,
            "action": self.action,
            "status": status,
            "fail_reason": "",
            "submit_time": int(self.submitted_at),
            "start_time": 0,
            "finish_time": 0,
            "progress": "0%",
            "properties": {
                "input": "",
                "upstream_model_name": f"suno_{self.action.lower()}",
                "origin_model_name": f"suno_{self.action.lower()}",
            },
            "data": None,  # new-api stores no payload until the upstream has answered
        }
        if status == "NOT_START":
            return record
        if status == "SUBMITTED":
            record["updated_at"] = int(self.accepted_at)
            record["data"] = self._upstream_state("0%", status)
            return record
        record["start_time"] = int(self.started_at)
        if status == "IN_PROGRESS":
            progress = f"{self.percent(now)}%"
            record.update(updated_at=int(now), progress=progress, data=self._upstream_state(progress, status))
            if self.streaming_clips and self.percent(now) > 50:
                record["data"]["clips"] = with_origin(self.streaming_clips, origin)
            return record
        record.update(updated_at=int(self.finishes_at), finish_time=int(self.finishes_at), progress="100%")
        if status == "FAILURE":
            record.update(fail_reason=self.fail_reason, data=self._upstream_state("100%", status))
            return record
        if self.result_url is not None:
            # Placed where the seed page has it: between fail_reason and submit_time.
            record = _insert_after(record, "fail_reason", "result_url", with_origin(self.result_url, origin))
        record["data"] = with_origin(self.result, origin)
        return record

    def _upstream_state(self, progress: str, status: TaskStatus) -> dict[str, Any]:
        return {"progress": progress, "status": status, "task_id": self.upstream_id}


def _insert_after(record: dict[str, Any], anchor: str, key: str, value: object) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, item in record.items():
        out[name] = item
        if name == anchor:
            out[key] = value
    return out


def with_origin(value: _T, origin: str) -> _T:
    """A deep copy of a JSON value in which every link (an origin-relative path, `/...`, held by a key named
    `url` or ending in `_url`) becomes an absolute URL under `origin`.

    Only link keys are rewritten, so user text (titles, lyrics, tags) is never touched, whatever it contains.
    """
    return _rewrite(value, origin.rstrip("/"), is_link=True)


def _rewrite(value: _T, origin: str, *, is_link: bool) -> _T:
    if isinstance(value, dict):
        items = cast(dict[str, object], value).items()
        return cast(_T, {key: _rewrite(item, origin, is_link=_is_link_key(key)) for key, item in items})
    if isinstance(value, list):
        return cast(_T, [_rewrite(item, origin, is_link=False) for item in cast(list[object], value)])
    if is_link and isinstance(value, str) and value.startswith("/"):
        return cast(_T, origin + value)
    return value


def _is_link_key(key: str) -> bool:
    return key == "url" or key.endswith("_url")
