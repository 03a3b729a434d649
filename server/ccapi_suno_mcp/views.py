"""What tools return: structured views of tasks and clips, and their short readable text."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from ccapi_suno_mcp._json import json_object
from ccapi_suno_mcp.ccapi import Clip, SunoTask, TaskStatus, clip_state_is_final
from ccapi_suno_mcp.ledger import ClipRecord, LocalFile, TaskRecord

__all__ = [
    "ClipView",
    "FileView",
    "SubmittedTask",
    "TaskView",
    "TasksView",
    "render_submitted",
    "render_task",
    "render_tasks",
]


class FileView(BaseModel):
    kind: str = Field(description="audio, image, video, wav, midi, stem, sidecar, lrc or lyrics.")
    path: str = Field(description="Where the file was saved on this machine.")
    size: int = Field(description="Size in bytes.")


class ClipView(BaseModel):
    clip_id: str = Field(description="Pass to follow-up tools (extend, cover, stems, WAV...) and suno_download.")
    title: str | None = None
    state: str | None = Field(default=None, description="CCAPI's clip state, e.g. completed or streaming.")
    final: bool = Field(description="True when the links are the finished files; False for a streaming preview.")
    duration_seconds: float | None = None
    tags: str | None = None
    audio_url: str | None = None
    image_url: str | None = None
    video_url: str | None = None
    lyrics: str | None = None
    local_files: list[FileView] = Field(default_factory=lambda: list[FileView]())
    resource_uri: str = Field(description="MCP resource with this clip's details and lineage.")


class TaskView(BaseModel):
    task_id: str | None = Field(description="CCAPI's task id (task_...); None if the submit's outcome is unknown.")
    action: str = Field(description="CCAPI action token, e.g. MUSIC.")
    tool: str | None = Field(default=None, description="The tool that submitted it, when this server did.")
    status: str = Field(description="NOT_START, SUBMITTED, QUEUED, IN_PROGRESS, SUCCESS or FAILURE (or unknown).")
    done: bool = Field(description="True once SUCCESS or FAILURE: nothing will change any more.")
    progress_percent: int | None = None
    title: str | None = None
    fail_reason: str | None = None
    clips: list[ClipView] = Field(default_factory=lambda: list[ClipView]())
    result: dict[str, Any] | None = Field(
        default=None, description="The rest of a finished task's result (lyrics, BPM, WAV/MIDI/video links...)."
    )
    result_url: str | None = None
    parent_task_id: str | None = Field(default=None, description="The task this one was derived from.")
    parent_clip_id: str | None = Field(default=None, description="The clip this one was derived from.")
    submitted_at: str | None = Field(default=None, description="When it was submitted (UTC, ISO 8601).")
    local_files: list[FileView] = Field(default_factory=lambda: list[FileView]())
    resource_uri: str | None = Field(default=None, description="MCP resource that follows this task.")
    not_refreshed: str | None = Field(
        default=None, description="Set when CCAPI could not be read: why this is the ledger's last known state."
    )
    next_step: str = Field(description="What to do next.")


class TasksView(BaseModel):
    tasks: list[TaskView]
    missing: list[str] = Field(default_factory=lambda: list[str](), description="Ids CCAPI does not know for this key.")


def _iso(timestamp: float | None) -> str | None:
    if not timestamp:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _files(files: list[LocalFile]) -> list[FileView]:
    return [FileView(kind=file.kind, path=file.path, size=file.size) for file in files]


def _clip_view(clip: Clip | ClipRecord, files: list[LocalFile] | None = None) -> ClipView:
    final = clip_state_is_final(clip.state)
    return ClipView(
        clip_id=clip.clip_id,
        title=clip.title,
        state=clip.state,
        final=final,
        duration_seconds=clip.duration,
        tags=clip.tags,
        audio_url=clip.audio_url,
        image_url=clip.image_url,
        video_url=clip.video_url,
        lyrics=clip.lyrics,
        local_files=_files(files or []),
        resource_uri=f"suno://clips/{clip.clip_id}",
    )


def _rest_of_result(data: Any, status: TaskStatus) -> dict[str, Any] | None:
    fields = json_object(data)
    if status is not TaskStatus.SUCCESS or fields is None:
        return None
    rest = {key: value for key, value in fields.items() if key not in ("clips", "progress", "status", "task_id")}
    return rest or None


def _next_step(status: TaskStatus, task_id: str | None, has_clips: bool) -> str:
    if task_id is None:
        return "The submit's outcome is unknown: see the error it returned before retrying."
    if status is TaskStatus.SUCCESS:
        if has_clips:
            return "Done. Share the audio links, save files with suno_download, or pass a clip_id to a follow-up tool."
        return "Done. The answer is in result."
    if status is TaskStatus.FAILURE:
        return "Failed (CCAPI refunds failed tasks). Change the request as fail_reason suggests and submit again."
    return f"Still working: call suno_wait_for_tasks with [{task_id!r}] to wait for it."


def render_task(source: TaskRecord | SunoTask) -> TaskView:
    """The view of a ledger record (preferred: it has lineage and files) or of a bare CCAPI record."""
    if isinstance(source, SunoTask):
        status = source.state
        clips = [_clip_view(clip) for clip in source.clips]
        return TaskView(
            task_id=source.task_id,
            action=source.action,
            status=source.status,
            done=status.is_terminal,
            progress_percent=source.progress_percent,
            title=clips[0].title if clips else None,
            fail_reason=source.fail_reason or None,
            clips=clips,
            result=_rest_of_result(source.data, status),
            result_url=source.result_url,
            submitted_at=_iso(source.submit_time),
            resource_uri=f"suno://tasks/{source.task_id}",
            next_step=_next_step(status, source.task_id, bool(clips)),
        )
    status = TaskStatus.parse(source.status)
    by_clip: dict[str | None, list[LocalFile]] = {}
    for file in source.local_files:
        by_clip.setdefault(file.clip_id, []).append(file)
    clips = [_clip_view(clip, by_clip.get(clip.clip_id)) for clip in source.clips]
    return TaskView(
        task_id=source.task_id,
        action=source.action,
        tool=source.tool,
        status=source.status,
        done=source.is_terminal,
        progress_percent=SunoTask(task_id="-", progress=source.progress).progress_percent,
        title=source.title,
        fail_reason=source.fail_reason or source.error,
        clips=clips,
        result=_rest_of_result(source.result, status),
        result_url=source.result_url,
        parent_task_id=source.parent_task_id,
        parent_clip_id=source.parent_clip_id,
        submitted_at=_iso(source.created_at),
        local_files=_files(by_clip.get(None, [])),
        resource_uri=f"suno://tasks/{source.task_id}" if source.task_id else None,
        next_step=_next_step(status, source.task_id, bool(clips)),
    )


def _line(view: TaskView) -> str:
    name = f'"{view.title}"' if view.title else view.action
    progress = f" {view.progress_percent}%" if view.progress_percent is not None and not view.done else ""
    text = f"{view.task_id or '(no task id)'} {name} [{view.action}]: {view.status}{progress}"
    if view.fail_reason:
        text += f" ({view.fail_reason})"
    for clip in view.clips:
        length = f" {clip.duration_seconds:.0f}s" if clip.duration_seconds else ""
        link = clip.audio_url if clip.final else "(preview only)"
        text += f"\n  - {clip.clip_id} {clip.title or ''}{length} {link or ''}".rstrip()
    if view.result:
        text += f"\n  result: {view.result}"
    if view.not_refreshed:
        text += f"\n  ({view.not_refreshed})"
    return text


def render_tasks(views: list[TaskView], missing: list[str] | None = None) -> str:
    """A short readable text for one or more task views."""
    lines = [_line(view) for view in views]
    if missing:
        lines.append(f"Unknown to CCAPI for this key: {', '.join(missing)}")
    if len(views) == 1:
        lines.append(views[0].next_step)
    return "\n".join(lines) or "No tasks."


class SubmittedTask(BaseModel):
    """What an action tool returns at once: the task and what to do next (clips come with the wait)."""

    task_id: str | None = Field(description="CCAPI's task id (task_...): pass it to suno_wait_for_tasks.")
    action: str = Field(description="CCAPI action token, e.g. MUSIC.")
    tool: str | None = None
    status: str = Field(description="NOT_START, SUBMITTED, QUEUED, IN_PROGRESS, SUCCESS or FAILURE (or unknown).")
    done: bool = Field(description="True once SUCCESS or FAILURE.")
    title: str | None = None
    parent_task_id: str | None = Field(default=None, description="The task this one was derived from.")
    parent_clip_id: str | None = Field(default=None, description="The clip this one was derived from.")
    submitted_at: str | None = Field(default=None, description="When it was submitted (UTC, ISO 8601).")
    resource_uri: str | None = Field(default=None, description="MCP resource that follows this task.")
    reused_existing: bool = Field(
        description="True when an identical request from the last 10 minutes was returned instead of paying again."
    )
    note: str = Field(description="A short summary of what happened.")
    next_step: str = Field(description="What to do next.")


def render_submitted(record: TaskRecord, *, reused: bool, price: str) -> SubmittedTask:
    """The answer of an action tool: the submitted (or reused) task, what it costs, and what to do next.

    `price` is the action's learned price for people (`learned price $0.08`, or `price not known yet`).
    """
    view = render_task(record)
    if reused:
        note = (
            f"An identical request was already submitted as {record.task_id} ({record.status}); returning it instead "
            "of paying again. Pass force=true to submit a new one."
        )
    else:
        note = f"Submitted {record.task_id} ({record.action}). It runs in the background."
    note += f" {price[:1].upper()}{price[1:]}" + ("." if reused else "; suno_get_usage shows spend.")
    fields = view.model_dump(include=set(SubmittedTask.model_fields) - {"reused_existing", "note"})
    return SubmittedTask(**fields, reused_existing=reused, note=f"{note} {view.next_step}")
