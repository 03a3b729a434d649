"""Rows to records: tasks with their clips, files and history; list cursors; the derived text columns."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

from ccapi_suno_mcp._json import json_list, json_object
from ccapi_suno_mcp.ccapi import Clip, SunoTask, lenient
from ccapi_suno_mcp.ledger._dialect import Row, Session
from ccapi_suno_mcp.ledger._models import ClipRecord, LocalFile, StatusChange, TaskRecord, canonical_json
from ccapi_suno_mcp.ledger._protocol import InvalidCursorError

__all__ = [
    "CLIP_COLUMNS",
    "FILE_COLUMNS",
    "TASK_COLUMNS",
    "assemble",
    "clip_record",
    "clips_with_raw",
    "decode_cursor",
    "encode_cursor",
    "loads",
    "local_file",
    "request_title",
    "search_text",
]

TASK_COLUMNS = (
    "seq, submission_id, task_id, tool, action, request, fingerprint, state, status, progress, fail_reason, error, "
    "title, result_url, result, parent_task_id, parent_clip_id, created_at, updated_at, finished_at, "
    "quota, reserved_quota, charged_quota, refunded_quota"
)
CLIP_COLUMNS = (
    "clips.clip_id, clips.task_id, clips.title, clips.tags, clips.lyrics, clips.audio_url, clips.video_url, "
    "clips.image_url, clips.state, clips.duration, clips.created_at, clips.raw"
)
FILE_COLUMNS = "clip_id, task_id, kind, path, size, content_type, created_at"

# Where a readable name for a task may be found in its request body, best first.
_TITLE_FIELDS = ("title", "gpt_description_prompt", "prompt", "description", "tags")
_TITLE_MAX = 60
_SECTION_TAG = re.compile(r"\[[^\]]*\]")


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def assemble(session: Session, rows: list[Row], *, history: bool) -> list[TaskRecord]:
    """Task records for `rows`, with their clips and files (and history) fetched in one query each."""
    if not rows:
        return []
    dialect = session.dialect
    task_ids = dialect.list_param([row["task_id"] for row in rows if row["task_id"] is not None])
    lineage = {row["task_id"]: (row["parent_task_id"], row["parent_clip_id"]) for row in rows}
    file_rows = session.execute(
        f"SELECT {FILE_COLUMNS} FROM local_files WHERE {dialect.member('task_id')} "
        f"OR clip_id IN (SELECT clip_id FROM clips WHERE {dialect.member('task_id')}) ORDER BY created_at, id",
        (task_ids, task_ids),
    )
    files = [local_file(row) for row in file_rows]
    files_by_clip: dict[str, list[LocalFile]] = {}
    for file in files:
        if file.clip_id is not None:
            files_by_clip.setdefault(file.clip_id, []).append(file)
    clips_by_task: dict[str, list[ClipRecord]] = {}
    for row in session.execute(
        f"SELECT {CLIP_COLUMNS} FROM clips WHERE {dialect.member('task_id')} ORDER BY task_id, position", (task_ids,)
    ):
        parent_task_id, parent_clip_id = lineage[row["task_id"]]
        clip = clip_record(row, parent_task_id, parent_clip_id, files_by_clip.get(row["clip_id"], []))
        clips_by_task.setdefault(clip.task_id, []).append(clip)
    history_by_submission: dict[str, list[StatusChange]] = {}
    if history:
        for row in session.execute(
            "SELECT submission_id, status, progress, at FROM status_history "
            f"WHERE {dialect.member('submission_id')} ORDER BY id",
            (dialect.list_param([row["submission_id"] for row in rows]),),
        ):
            change = StatusChange(status=row["status"], progress=row["progress"], at=row["at"])
            history_by_submission.setdefault(row["submission_id"], []).append(change)
    records: list[TaskRecord] = []
    for row in rows:
        task_id: str | None = row["task_id"]
        clips = clips_by_task.get(task_id, []) if task_id is not None else []
        clip_ids = {clip.clip_id for clip in clips}
        task_files = [f for f in files if task_id is not None and (f.task_id == task_id or f.clip_id in clip_ids)]
        records.append(
            TaskRecord(
                submission_id=row["submission_id"],
                task_id=task_id,
                tool=row["tool"],
                action=row["action"],
                request=json.loads(row["request"]),
                fingerprint=row["fingerprint"],
                state=row["state"],
                status=row["status"],
                progress=row["progress"],
                fail_reason=row["fail_reason"],
                error=row["error"],
                title=row["title"],
                result_url=row["result_url"],
                result=loads(row["result"]),
                parent_task_id=row["parent_task_id"],
                parent_clip_id=row["parent_clip_id"],
                created_at=row["created_at"],
                updated_at=row["updated_at"],
                finished_at=row["finished_at"],
                quota=row["quota"],
                reserved_quota=row["reserved_quota"],
                charged_quota=row["charged_quota"],
                refunded_quota=row["refunded_quota"],
                clips=clips,
                local_files=task_files,
                history=history_by_submission.get(row["submission_id"], []),
            )
        )
    return records


def clip_record(row: Row, parent_task_id: str | None, parent_clip_id: str | None, files: list[LocalFile]) -> ClipRecord:
    return ClipRecord(
        clip_id=row["clip_id"],
        task_id=row["task_id"],
        title=row["title"],
        tags=row["tags"],
        lyrics=row["lyrics"],
        audio_url=row["audio_url"],
        video_url=row["video_url"],
        image_url=row["image_url"],
        state=row["state"],
        duration=row["duration"],
        created_at=row["created_at"],
        raw=json.loads(row["raw"]),
        local_files=files,
        parent_task_id=parent_task_id,
        parent_clip_id=parent_clip_id,
    )


def local_file(row: Row) -> LocalFile:
    return LocalFile(
        clip_id=row["clip_id"],
        task_id=row["task_id"],
        kind=row["kind"],
        path=row["path"],
        size=row["size"],
        content_type=row["content_type"],
        created_at=row["created_at"],
    )


def clips_with_raw(task: SunoTask) -> list[tuple[Clip, dict[str, Any]]]:
    """The task's clips beside the JSON CCAPI sent for each (the same entries as `SunoTask.clips`)."""
    data = json_object(task.data) or {}
    pairs: list[tuple[Clip, dict[str, Any]]] = []
    for item in json_list(data.get("clips")) or []:
        fields = json_object(item)
        if fields is not None and isinstance(fields.get("clip_id"), str):
            pairs.append((lenient(Clip, fields), fields))
    return pairs


def search_text(
    title: str | None, tool: str, action: str, task_id: str | None, request_json: str, clip_titles: list[str]
) -> str:
    """What `list_tasks(text=...)` searches, case-folded once on write so that a search needs no function calls."""
    return "\n".join([title or "", tool, action, task_id or "", request_json, *clip_titles]).casefold()


def request_title(request: Mapping[str, Any]) -> str | None:
    """A readable name from the request: its title, else the start of its prompt, description or tags."""
    title = request.get("title")
    if isinstance(title, str) and title.strip():
        return title.strip()
    for field in _TITLE_FIELDS[1:]:
        value = request.get(field)
        if isinstance(value, str) and (text := " ".join(_SECTION_TAG.sub(" ", value).split())):
            return text if len(text) <= _TITLE_MAX else text[: _TITLE_MAX - 1].rsplit(" ", 1)[0].rstrip(",.;:") + "…"
    return None


def encode_cursor(row: Row) -> str:
    """The cursor after `row`: its time and its submission id (random), never the ledger-wide `seq`, which would
    tell a principal how many submissions everyone else made between two of its own pages."""
    return (
        base64.urlsafe_b64encode(canonical_json([row["created_at"], row["submission_id"]]).encode())
        .decode()
        .rstrip("=")
    )


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise InvalidCursorError(f"not a list_tasks cursor: {cursor!r}") from error
    fields = json_list(value)
    if (
        fields is None
        or len(fields) != 2
        or not isinstance(fields[0], int | float)
        or isinstance(fields[0], bool)
        or not isinstance(fields[1], str)
        or not fields[1]
    ):
        raise InvalidCursorError(f"not a list_tasks cursor: {cursor!r}")
    return float(fields[0]), fields[1]
