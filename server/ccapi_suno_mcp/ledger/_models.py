"""The ledger's records: submissions and their CCAPI tasks, clips, status history and local files."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from ccapi_suno_mcp.ccapi import SunoTask

__all__ = [
    "ClipRecord",
    "LocalFile",
    "StatusChange",
    "SubmissionState",
    "TaskPage",
    "TaskRecord",
    "body_fingerprint",
    "canonical_json",
]

SubmissionState = Literal["submitting", "submitted", "outcome_unknown", "rejected"]
"""Where a submission stands on our side.

- `submitting`: recorded, the request is being sent.
- `submitted`: CCAPI answered with a task id.
- `outcome_unknown`: the request may have reached CCAPI but no answer came; do not resubmit blindly.
- `rejected`: CCAPI refused it; nothing was billed.
"""

TERMINAL_STATUSES = ("SUCCESS", "FAILURE")


def canonical_json(value: Any) -> str:
    """`value` as canonical JSON: sorted keys, no spaces, non-ASCII kept as is.

    Raises:
        TypeError: `value` holds something JSON cannot represent.
        ValueError: `value` holds a circular reference or a non-finite float.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def body_fingerprint(action: str, body: Mapping[str, Any]) -> str:
    """The hex SHA-256 of `action.upper()` followed by the canonical JSON of `body`.

    Two submissions with the same fingerprint would make CCAPI do (and bill) the same work twice.

    Raises:
        TypeError: `body` holds something JSON cannot represent.
        ValueError: `body` holds a circular reference or a non-finite float.
    """
    text = action.upper() + canonical_json(dict(body))
    return hashlib.sha256(text.encode()).hexdigest()


class LocalFile(BaseModel):
    """A file saved on this machine for a clip, or for a task as a whole (`clip_id` None)."""

    model_config = ConfigDict(defer_build=True)

    clip_id: str | None = Field(description="The clip it was saved from; None for a task-level file.")
    task_id: str | None = Field(description="CCAPI's id of the task it belongs to, when known.")
    kind: str = Field(description='What it is: "audio", "video", "image", "wav", "midi", "stem", "sidecar", "lrc"...')
    path: str = Field(description="Absolute path of the file.")
    size: int = Field(description="Size in bytes.")
    content_type: str = Field(description="MIME type, e.g. audio/mpeg.")
    created_at: float = Field(description="When it was saved (Unix time).")


class ClipRecord(BaseModel):
    """A clip of a task's result, with its files and the lineage of the task that produced it."""

    model_config = ConfigDict(defer_build=True)

    clip_id: str
    task_id: str = Field(description="CCAPI's id of the task whose result holds this clip.")
    title: str | None = None
    tags: str | None = None
    lyrics: str | None = None
    audio_url: str | None = None
    video_url: str | None = None
    image_url: str | None = None
    state: str | None = Field(default=None, description="CCAPI's clip state, e.g. streaming or completed.")
    duration: float | None = Field(default=None, description="Length in seconds.")
    created_at: str | None = Field(default=None, description="CCAPI's creation time of the clip, as sent.")
    raw: dict[str, Any] = Field(description="The clip JSON as CCAPI sent it.")
    local_files: list[LocalFile] = Field(default_factory=lambda: list[LocalFile]())
    parent_task_id: str | None = Field(default=None, description="The task the producing task was derived from.")
    parent_clip_id: str | None = Field(default=None, description="The clip the producing task was derived from.")


class StatusChange(BaseModel):
    """One step of a task's status history."""

    model_config = ConfigDict(defer_build=True)

    status: str
    progress: str | None = None
    at: float = Field(description="When the ledger saw it (Unix time).")


class TaskRecord(BaseModel):
    """Everything the ledger knows of one submission and the CCAPI task it became."""

    model_config = ConfigDict(defer_build=True)

    submission_id: str = Field(description="Our own id (uuid4 hex); exists from before the request is sent.")
    task_id: str | None = Field(description="CCAPI's task id (task_...); None until CCAPI answers.")
    tool: str = Field(description="The tool that submitted it, e.g. suno_generate_music.")
    action: str = Field(description="CCAPI action token, e.g. MUSIC.")
    request: dict[str, Any] = Field(description="The exact JSON body sent (or to be sent).")
    fingerprint: str = Field(description="body_fingerprint(action, request).")
    state: SubmissionState
    status: str = Field(description="CCAPI's status: NOT_START until the first fetch, then as CCAPI reports it.")
    progress: str | None = None
    fail_reason: str | None = None
    error: str | None = Field(default=None, description="Why the outcome is unknown or the submit was rejected.")
    title: str | None = Field(default=None, description="The best readable name of the task.")
    result_url: str | None = None
    result: Any = Field(default=None, description="CCAPI's raw `data` of the latest fetch.")
    parent_task_id: str | None = None
    parent_clip_id: str | None = None
    created_at: float
    updated_at: float
    finished_at: float | None = Field(default=None, description="When the ledger first saw it terminal.")
    quota: int | None = Field(default=None, description="The quota units CCAPI's record says it was charged.")
    reserved_quota: int | None = Field(
        default=None, description="The learned price reserved for it when it was submitted (None: not known)."
    )
    charged_quota: int | None = Field(
        default=None, description="Its charge once settled: the quota on SUCCESS, 0 on FAILURE (refunded)."
    )
    refunded_quota: int | None = Field(default=None, description="What a FAILURE was refunded, when reported.")
    clips: list[ClipRecord] = Field(default_factory=lambda: list[ClipRecord]())
    local_files: list[LocalFile] = Field(
        default_factory=lambda: list[LocalFile](), description="Files saved for this task and its clips."
    )
    history: list[StatusChange] = Field(
        default_factory=lambda: list[StatusChange](), description="Status history, oldest first (get_task only)."
    )

    @property
    def is_terminal(self) -> bool:
        """True once nothing will change any more: SUCCESS, FAILURE, or rejected by CCAPI."""
        return self.status in TERMINAL_STATUSES or self.state == "rejected"

    def already_shows(self, task: SunoTask) -> bool:
        """Whether this record already holds what a fetch of its task says, so applying it would change nothing.

        The clips and the title follow from the raw data, so comparing it covers them; the charge follows from
        the status and the quota.
        """
        return (
            self.status == (task.status.strip().upper() or "UNKNOWN")
            and self.progress == (task.progress or None)
            and self.fail_reason == (task.fail_reason or None)
            and self.result_url == (task.result_url or None)
            and self.result == task.data
            and (task.quota is None or self.quota == task.quota)
        )


class TaskPage(BaseModel):
    """One page of `list_tasks`, newest first."""

    model_config = ConfigDict(defer_build=True)

    tasks: list[TaskRecord]
    next_cursor: str | None = Field(description="Pass to list_tasks for the next page; None on the last page.")
