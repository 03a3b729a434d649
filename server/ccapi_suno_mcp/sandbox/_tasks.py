"""Task and clip records, and the task lifecycle computed from the clock (no background work)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "QUOTA_PER_USD",
    "STARTING_QUOTA",
    "Account",
    "Clip",
    "Outcome",
    "TaskRecord",
    "TaskStatus",
]

QUOTA_PER_USD = 500_000
STARTING_QUOTA = 10 * QUOTA_PER_USD

# Seconds (before dividing by speed) after submit at which a task is accepted upstream and starts running.
SUBMITTED_AFTER = 0.3
STARTED_AFTER = 0.6

TaskStatus = Literal["NOT_START", "SUBMITTED", "IN_PROGRESS", "SUCCESS", "FAILURE"]
Outcome = Literal["success", "failure", "stuck"]


@dataclass
class Account:
    """One API key: a new-api user with its own tasks and balance."""

    key: str
    user_id: int
    granted_quota: int = STARTING_QUOTA


@dataclass(frozen=True)
class Clip:
    """A clip the sandbox produced, remembered so follow-up actions can reference it."""

    clip_id: str
    task_id: str
    """Public id of the task that produced it (what follow-ups must send as `task_id`)."""
    owner: str
    title: str
    tags: str
    lyrics: str
    duration: float
    document: dict[str, Any]
    """The clip exactly as it appears in the producing task's result."""
    extends: tuple[str, float] | None = None
    """For an extension: (source clip id, `continue_at`), so CONCAT can rebuild the full song."""


@dataclass
class TaskRecord:
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

    def render(self, now: float) -> dict[str, Any]:
        """The TaskDto as `GET /suno/fetch/{id}` returns it at time `now` (the seed page's field set)."""
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
                record["data"]["clips"] = copy.deepcopy(self.streaming_clips)
            return record
        record.update(updated_at=int(self.finishes_at), finish_time=int(self.finishes_at), progress="100%")
        if status == "FAILURE":
            record.update(fail_reason=self.fail_reason, data=self._upstream_state("100%", status))
            return record
        if self.result_url is not None:
            # Placed where the seed page has it: between fail_reason and submit_time.
            record = _insert_after(record, "fail_reason", "result_url", self.result_url)
        record["data"] = copy.deepcopy(self.result)
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
