"""The ledger's statements and transactions, written once for every backend (see `_dialect`).

Each function runs on one `Session` in the calling thread and opens its own transaction where it writes. The
backends (`_sqlite`, `_postgres`) only provide the session: a connection, the engine's transactions and its
spelling of a few fragments.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Literal

from ccapi_suno_mcp.ccapi import Clip, SunoTask, TaskStatus, lenient
from ccapi_suno_mcp.ledger._charges import SpendGate, settled_charge
from ccapi_suno_mcp.ledger._dialect import ConflictError, Row, Session
from ccapi_suno_mcp.ledger._models import TERMINAL_STATUSES, ClipRecord, LocalFile, TaskPage, TaskRecord
from ccapi_suno_mcp.ledger._protocol import LedgerError, UnknownSubmissionError
from ccapi_suno_mcp.ledger._rows import (
    CLIP_COLUMNS,
    FILE_COLUMNS,
    TASK_COLUMNS,
    assemble,
    clip_record,
    clips_with_raw,
    decode_cursor,
    encode_cursor,
    loads,
    local_file,
    search_text,
)
from ccapi_suno_mcp.ledger._spend import check_gate

__all__ = [
    "INTERRUPTED_AFTER",
    "Claim",
    "add_local_file",
    "apply_update",
    "claim",
    "count_tasks",
    "find_task",
    "get_clip",
    "list_page",
    "mark",
    "newest_duplicate",
    "pending_task_ids",
    "read_tasks",
    "record_task_id",
    "restore_repeated_clips",
    "search_ids",
    "settle_interrupted",
]

INTERRUPTED_AFTER = 120.0
"""Seconds after which a submission still `submitting` is taken as interrupted, whoever owns it."""

_PENDING = "state != 'rejected' AND status NOT IN ('SUCCESS', 'FAILURE')"
_SUBMISSION_STATE_FILTERS = frozenset({"submitting", "outcome_unknown", "rejected"})


class Claim:
    """A submission about to be begun: everything `claim` writes, computed before the transaction."""

    def __init__(
        self,
        *,
        submission_id: str,
        tool: str,
        action: str,
        request_json: str,
        fingerprint: str,
        title: str | None,
        parent_task_id: str | None,
        parent_clip_id: str | None,
        owner: str,
        principal: str,
    ) -> None:
        self.submission_id = submission_id
        self.tool = tool
        self.action = action
        self.request_json = request_json
        self.fingerprint = fingerprint
        self.title = title
        self.parent_task_id = parent_task_id
        self.parent_clip_id = parent_clip_id
        self.owner = owner
        self.principal = principal


# -- submissions --------------------------------------------------------------------------------------------


def claim(
    session: Session, new: Claim, *, now: float, within_seconds: float | None, budget: SpendGate | None = None
) -> tuple[TaskRecord, bool]:
    """In one transaction: the newest duplicate within the window (False), or the new submission (True), which
    passes the `budget` gate and reserves its price.

    Raises:
        OverBudgetError: The new submission does not fit a budget of the gate (nothing was recorded).
    """
    with session.transaction(durable=True):
        session.lock_claims()
        if within_seconds is not None:
            duplicate = newest_duplicate(session, new.principal, new.fingerprint, now - within_seconds)
            if duplicate is not None and duplicate.state == "submitting" and duplicate.task_id is None:
                owner = _owner_of(session, duplicate.submission_id)
                if session.owner_alive(owner) is False:  # its sender died mid-send: nobody will record an answer
                    _settle_orphan(session, duplicate.submission_id, owner, now)
                    duplicate = _one_task(session, duplicate.submission_id, history=False)
            if duplicate is not None:
                return duplicate, False
        if budget is not None:
            check_gate(session, budget)
        session.execute(
            "INSERT INTO tasks (submission_id, tool, action, request, fingerprint, state, status, title, "
            "parent_task_id, parent_clip_id, created_at, updated_at, search_text, owner, principal, reserved_quota) "
            "VALUES (?, ?, ?, ?, ?, 'submitting', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                new.submission_id,
                new.tool,
                new.action,
                new.request_json,
                new.fingerprint,
                TaskStatus.NOT_START.value,
                new.title,
                new.parent_task_id,
                new.parent_clip_id,
                now,
                now,
                search_text(new.title, new.tool, new.action, None, new.request_json, []),
                new.owner,
                new.principal,
                None if budget is None else budget.price_quota,
            ),
        )
        session.execute(
            "INSERT INTO status_history (submission_id, status, progress, at) VALUES (?, ?, NULL, ?)",
            (new.submission_id, TaskStatus.NOT_START.value, now),
        )
        return _one_task(session, new.submission_id, history=True), True


def record_task_id(session: Session, submission_id: str, task_id: str, now: float) -> TaskRecord:
    """Store CCAPI's task id for a submission (state `submitted`), durably."""
    with session.transaction(durable=True):
        row = _submission_row(session, submission_id)
        if row["task_id"] not in (None, task_id):
            raise LedgerError(f"submission {submission_id!r} already has task id {row['task_id']!r}")
        clip_titles = _clip_titles(session, task_id)
        try:
            session.execute(
                "UPDATE tasks SET task_id = ?, state = 'submitted', error = NULL, updated_at = ?, search_text = ? "
                "WHERE submission_id = ?",
                (
                    task_id,
                    now,
                    search_text(row["title"], row["tool"], row["action"], task_id, row["request"], clip_titles),
                    submission_id,
                ),
            )
        except ConflictError as error:
            raise LedgerError(f"task id {task_id!r} is already recorded for another submission") from error
        return _one_task(session, submission_id, history=True)


def mark(
    session: Session, submission_id: str, state: Literal["outcome_unknown", "rejected"], error: str, now: float
) -> TaskRecord:
    """Note an unknown outcome or a rejection; a submission with a known task id stays `submitted`."""
    with session.transaction(durable=True):
        row = _submission_row(session, submission_id)
        # A known task id is proof CCAPI accepted the request: keep it submitted so the watcher follows it.
        new_state = "submitted" if row["task_id"] is not None else state
        session.execute(
            "UPDATE tasks SET state = ?, error = ?, updated_at = ? WHERE submission_id = ?",
            (new_state, error, now, submission_id),
        )
        return _one_task(session, submission_id, history=True)


def newest_duplicate(session: Session, principal: str, fingerprint: str, since: float) -> TaskRecord | None:
    """The principal's newest submission with this fingerprint since `since` that may have been billed."""
    rows = session.execute(
        f"SELECT {TASK_COLUMNS} FROM tasks WHERE fingerprint = ? AND created_at >= ? AND principal = ? "
        "AND state != 'rejected' AND status != 'FAILURE' ORDER BY created_at DESC, seq DESC LIMIT 1",
        (fingerprint, since, principal),
    )
    tasks = assemble(session, rows, history=False)
    return tasks[0] if tasks else None


def settle_interrupted(session: Session, now: float) -> None:
    """Mark submissions whose sender died, or that are older than any send may take, as outcome unknown."""
    rows = session.execute(
        "SELECT submission_id, owner, created_at FROM tasks WHERE state = 'submitting' AND task_id IS NULL"
    )
    orphans = [row for row in rows if _orphaned(session, row["owner"], row["created_at"], now)]
    if not orphans:
        return
    with session.transaction(durable=True):
        for row in orphans:
            _settle_orphan(session, row["submission_id"], row["owner"], now)


def _orphaned(session: Session, owner: str | None, created_at: float, now: float) -> bool:
    """Whether a submission still `submitting` has lost its sender: it died, or the send is far older than any
    request may take (whoever owns it)."""
    return created_at < now - INTERRUPTED_AFTER or session.owner_alive(owner) is False


def _owner_of(session: Session, submission_id: str) -> str | None:
    rows = session.execute("SELECT owner FROM tasks WHERE submission_id = ?", (submission_id,))
    return rows[0]["owner"] if rows else None


def _settle_orphan(session: Session, submission_id: str, owner: str | None, now: float) -> None:
    """Mark a submission whose sender is gone as outcome unknown: it may have reached CCAPI and been billed."""
    host, _, rest = (owner or "").partition(":")
    pid = rest.partition(":")[0]
    if pid and session.owner_alive(owner) is False:
        reason = (
            f"the server process that was sending it (pid {pid} on {host}) stopped before CCAPI's answer was recorded"
        )
    else:
        reason = "the server stopped while sending this request"
    session.execute(
        "UPDATE tasks SET state = 'outcome_unknown', error = ?, updated_at = ? "
        "WHERE submission_id = ? AND state = 'submitting' AND task_id IS NULL",
        (reason, now, submission_id),
    )


def _submission_row(session: Session, submission_id: str) -> Row:
    rows = session.execute(
        f"SELECT {TASK_COLUMNS} FROM tasks WHERE submission_id = ?{session.dialect.for_update}", (submission_id,)
    )
    if not rows:
        raise UnknownSubmissionError(submission_id)
    return rows[0]


# -- CCAPI updates ------------------------------------------------------------------------------------------


def apply_update(session: Session, task: SunoTask, clock: Callable[[], float]) -> bool:
    """Merge one fetched CCAPI task into the ledger in its own transaction; True if anything visible changed."""
    status = task.status.strip().upper() or TaskStatus.UNKNOWN.value
    clips = clips_with_raw(task)
    with session.transaction():
        rows = session.execute(
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE task_id = ?{session.dialect.for_update}", (task.task_id,)
        )
        if not rows:
            return False
        row = rows[0]
        if row["status"] in TERMINAL_STATUSES and status not in TERMINAL_STATUSES:
            return False
        now = clock()
        first_title = next((clip.title for clip, _ in clips if clip.title), None)
        quota = task.quota if task.quota is not None else row["quota"]
        charged_quota, refunded_quota = settled_charge(status, quota, row["reserved_quota"])
        fields: dict[str, Any] = {
            "status": status,
            "progress": task.progress or None,
            "fail_reason": task.fail_reason or None,
            "result_url": task.result_url or None,
            "title": first_title or row["title"],
            "finished_at": row["finished_at"] or (now if status in TERMINAL_STATUSES else None),
            "quota": quota,
            "charged_quota": charged_quota,
            "refunded_quota": refunded_quota,
        }
        changed = any(row[name] != value for name, value in fields.items())
        if loads(row["result"]) != task.data:
            changed = True
        if _upsert_clips(session, task.task_id, clips, now):
            changed = True
        if not changed:
            return False
        if status != row["status"] or fields["progress"] != row["progress"]:
            session.execute(
                "INSERT INTO status_history (submission_id, status, progress, at) VALUES (?, ?, ?, ?)",
                (row["submission_id"], status, fields["progress"], now),
            )
        titles = _clip_titles(session, task.task_id)
        text = search_text(fields["title"], row["tool"], row["action"], task.task_id, row["request"], titles)
        session.execute(
            "UPDATE tasks SET status = ?, progress = ?, fail_reason = ?, result_url = ?, title = ?, finished_at = ?, "
            "quota = ?, charged_quota = ?, refunded_quota = ?, result = ?, updated_at = ?, search_text = ? "
            "WHERE submission_id = ?",
            (
                fields["status"],
                fields["progress"],
                fields["fail_reason"],
                fields["result_url"],
                fields["title"],
                fields["finished_at"],
                fields["quota"],
                fields["charged_quota"],
                fields["refunded_quota"],
                None if task.data is None else json.dumps(task.data, ensure_ascii=False),
                now,
                text,
                row["submission_id"],
            ),
        )
        return True


def _upsert_clips(session: Session, task_id: str, clips: list[tuple[Clip, dict[str, Any]]], now: float) -> bool:
    """Store the clips under `task_id` in result order; True if any was new or different.

    A clip belongs to the task that first produced it: a later task whose result repeats it (a music video repeats
    its source clip) only fills in what the stored clip lacks, such as its `video_url`. Taking the clip over would
    make every follow-up on it name the wrong parent task, which CCAPI refuses.
    """
    if not clips:
        return False
    dialect = session.dialect
    stored = {
        row["clip_id"]: row
        for row in session.execute(
            f"SELECT {_CLIP_FIELDS}, task_id, position, raw FROM clips WHERE {dialect.member('clip_id')}",
            (dialect.list_param([clip.clip_id for clip, _ in clips]),),
        )
    }
    changed = False
    for position, (clip, raw) in enumerate(clips):
        row = stored.get(clip.clip_id)
        if row is not None and row["task_id"] != task_id:
            changed = _fill_in_echo(session, row, clip, raw) or changed
            continue
        if row is not None and (row["task_id"], row["position"], json.loads(row["raw"])) == (task_id, position, raw):
            continue
        changed = True
        session.execute(
            "INSERT INTO clips (clip_id, task_id, position, title, tags, lyrics, audio_url, video_url, image_url, "
            "state, duration, created_at, raw, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (clip_id) DO UPDATE SET task_id = excluded.task_id, position = excluded.position, "
            "title = excluded.title, tags = excluded.tags, lyrics = excluded.lyrics, audio_url = excluded.audio_url, "
            "video_url = excluded.video_url, image_url = excluded.image_url, state = excluded.state, "
            "duration = excluded.duration, created_at = excluded.created_at, raw = excluded.raw",
            (
                clip.clip_id,
                task_id,
                position,
                clip.title,
                clip.tags,
                clip.lyrics,
                clip.audio_url,
                clip.video_url,
                clip.image_url,
                clip.state,
                clip.duration,
                clip.created_at,
                json.dumps(raw, ensure_ascii=False),
                now,
            ),
        )
    return changed


# The clip fields an echo may fill in where the stored clip has none (never replace).
_ECHO_FILLS = ("title", "tags", "lyrics", "audio_url", "video_url", "image_url", "state", "duration", "created_at")
_CLIP_FIELDS = ", ".join(("clip_id", *_ECHO_FILLS))


def _fill_in_echo(session: Session, row: Row, clip: Clip, raw: dict[str, Any]) -> bool:
    """Add to a stored clip what another task's repeat of it carries and it lacks; True if anything was added."""
    fills = {
        name: value
        for name in _ECHO_FILLS
        if row[name] in (None, "") and (value := getattr(clip, name)) not in (None, "")
    }
    stored_raw: dict[str, Any] = json.loads(row["raw"])
    added = {key: value for key, value in raw.items() if stored_raw.get(key) in (None, "") and value not in (None, "")}
    if not fills and not added:
        return False
    assignments = "".join(f"{name} = ?, " for name in fills)
    session.execute(
        f"UPDATE clips SET {assignments}raw = ? WHERE clip_id = ?",
        (*fills.values(), json.dumps({**stored_raw, **added}, ensure_ascii=False), row["clip_id"]),
    )
    return True


def restore_repeated_clips(session: Session) -> int:
    """Give each clip that a repeat took over back to the task that made it; how many were given back.

    Ledgers written before the rule in `_upsert_clips` handed a clip to whichever task's result repeated it last: a
    music video's task (its `parent_clip_id` the clip) took its source clip from the song. The song's own stored
    result says where the clip stood and what it was; what the repeat added (its `video_url`) is kept.
    """
    rows = session.execute(
        "SELECT clips.clip_id, clips.raw, holder.parent_task_id AS owner_id, owner.result AS owner_result "
        "FROM clips JOIN tasks holder ON holder.task_id = clips.task_id "
        "JOIN tasks owner ON owner.task_id = holder.parent_task_id "
        "WHERE holder.parent_clip_id = clips.clip_id AND owner.result IS NOT NULL"
    )
    restored = 0
    for row in rows:
        made = SunoTask(task_id=row["owner_id"], data=loads(row["owner_result"]))
        found = [
            (position, raw)
            for position, (clip, raw) in enumerate(clips_with_raw(made))
            if clip.clip_id == row["clip_id"]
        ]
        if not found:
            continue
        position, raw = found[0]
        repeat: dict[str, Any] = json.loads(row["raw"])
        raw = {
            **raw,
            **{key: value for key, value in repeat.items() if raw.get(key) in (None, "") and value not in (None, "")},
        }
        clip = lenient(Clip, raw)
        session.execute(
            "UPDATE clips SET task_id = ?, position = ?, title = ?, tags = ?, lyrics = ?, audio_url = ?, "
            "video_url = ?, image_url = ?, state = ?, duration = ?, created_at = ?, raw = ? WHERE clip_id = ?",
            (
                row["owner_id"], position, clip.title, clip.tags, clip.lyrics, clip.audio_url, clip.video_url,
                clip.image_url, clip.state, clip.duration, clip.created_at, json.dumps(raw, ensure_ascii=False),
                clip.clip_id,
            ),
        )  # fmt: skip
        restored += 1
    return restored


def _clip_titles(session: Session, task_id: str) -> list[str]:
    rows = session.execute(
        "SELECT title FROM clips WHERE task_id = ? AND title IS NOT NULL ORDER BY position", (task_id,)
    )
    return [str(row["title"]) for row in rows]


# -- reads --------------------------------------------------------------------------------------------------


def read_tasks(session: Session, principal: str, wanted: list[str]) -> list[TaskRecord]:
    """The principal's tasks among `wanted` (distinct ids), in that order, with clips and local files."""
    with session.transaction(write=False):
        # By task id alone, so that the engine looks each up in its unique index (given the principal as well,
        # SQLite would walk the principal's index through all of its tasks); the principal is checked here.
        rows = session.execute(
            f"SELECT {TASK_COLUMNS}, principal FROM tasks WHERE {session.dialect.member('task_id')}",
            (session.dialect.list_param(wanted),),
        )
        tasks = assemble(session, [row for row in rows if row["principal"] == principal], history=False)
    by_id = {task.task_id: task for task in tasks}
    return [by_id[task_id] for task_id in wanted if task_id in by_id]


def find_task(
    session: Session, principal: str, column: Literal["task_id", "submission_id"], value: str
) -> TaskRecord | None:
    """The principal's task whose `column` is `value`, with its status history."""
    with session.transaction(write=False):
        rows = session.execute(
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE {column} = ? AND principal = ?", (value, principal)
        )
        tasks = assemble(session, rows, history=True)
    return tasks[0] if tasks else None


def _one_task(session: Session, submission_id: str, *, history: bool) -> TaskRecord:
    rows = session.execute(f"SELECT {TASK_COLUMNS} FROM tasks WHERE submission_id = ?", (submission_id,))
    return assemble(session, rows, history=history)[0]


def get_clip(session: Session, principal: str, clip_id: str) -> ClipRecord | None:
    """A clip of one of the principal's tasks."""
    with session.transaction(write=False):
        rows = session.execute(
            f"SELECT {CLIP_COLUMNS}, tasks.parent_task_id, tasks.parent_clip_id "
            "FROM clips JOIN tasks ON tasks.task_id = clips.task_id WHERE clips.clip_id = ? AND tasks.principal = ?",
            (clip_id, principal),
        )
        if not rows:
            return None
        files = session.execute(
            f"SELECT {FILE_COLUMNS} FROM local_files WHERE clip_id = ? ORDER BY created_at, id", (clip_id,)
        )
    row = rows[0]
    return clip_record(row, row["parent_task_id"], row["parent_clip_id"], [local_file(f) for f in files])


def list_page(
    session: Session,
    principal: str,
    *,
    status: str | None,
    action: str | None,
    text: str | None,
    limit: int,
    cursor: str | None,
) -> TaskPage:
    """A page of the principal's `list_tasks` (the arguments checked by the caller)."""
    clauses: list[str] = ["principal = ?"]
    params: list[Any] = [principal]
    if status:
        word = status.strip().lower()
        if word == "pending":
            clauses.append(_PENDING)
        elif word in _SUBMISSION_STATE_FILTERS:
            clauses.append("state = ?")
            params.append(word)
        else:
            clauses.append("status = ?")
            params.append(status.strip().upper())
    if action:
        clauses.append("(action = ? OR tool = ?)")
        params += [action.strip().upper(), action.strip()]
    if text:
        clauses.append(session.dialect.substring("search_text"))
        params.append(text.casefold())
    if cursor is not None:
        created_at, submission_id = decode_cursor(cursor)
        # Rows of the cursor's own time come after its row (by seq, looked up by its unique submission id).
        clauses.append("(created_at, seq) < (?, (SELECT seq FROM tasks WHERE submission_id = ? AND principal = ?))")
        params += [created_at, submission_id, principal]
    where = f"WHERE {' AND '.join(clauses)}"
    with session.transaction(write=False):
        rows = session.execute(
            f"SELECT {TASK_COLUMNS} FROM tasks {where} ORDER BY created_at DESC, seq DESC LIMIT ?", (*params, limit + 1)
        )
        tasks = assemble(session, rows[:limit], history=False)
    next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return TaskPage(tasks=tasks, next_cursor=next_cursor)


def pending_task_ids(session: Session) -> list[str]:
    rows = session.execute(
        "SELECT task_id FROM tasks WHERE state = 'submitted' AND status NOT IN ('SUCCESS', 'FAILURE') "
        "AND task_id IS NOT NULL ORDER BY created_at, seq"
    )
    return [str(row["task_id"]) for row in rows]


def add_local_file(session: Session, file: LocalFile) -> None:
    with session.transaction():
        session.execute(
            f"INSERT INTO local_files ({FILE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (path) DO UPDATE SET clip_id = excluded.clip_id, task_id = excluded.task_id, "
            "kind = excluded.kind, size = excluded.size, content_type = excluded.content_type, "
            "created_at = excluded.created_at",
            (file.clip_id, file.task_id, file.kind, file.path, file.size, file.content_type, file.created_at),
        )


def search_ids(
    session: Session, principal: str, prefix: str, *, kind: Literal["task", "clip"], limit: int
) -> list[str]:
    """The principal's task or clip ids starting with `prefix` (ignoring ASCII case), newest first."""
    pattern = re.sub(r"([\\%_])", r"\\\1", prefix) + "%"
    like = session.dialect.like
    if kind == "task":
        query = (
            f"SELECT task_id AS id FROM tasks WHERE task_id {like} ? ESCAPE '\\' AND principal = ? "
            "ORDER BY created_at DESC, seq DESC LIMIT ?"
        )
    else:
        query = (
            "SELECT clips.clip_id AS id FROM clips JOIN tasks ON tasks.task_id = clips.task_id "
            f"WHERE clips.clip_id {like} ? ESCAPE '\\' AND tasks.principal = ? "
            f"ORDER BY clips.seen_at DESC, clips.{session.dialect.clip_order} DESC LIMIT ?"
        )
    return [str(row["id"]) for row in session.execute(query, (pattern, principal, limit))]


def count_tasks(session: Session, principal: str) -> int:
    return int(session.execute("SELECT count(*) AS n FROM tasks WHERE principal = ?", (principal,))[0]["n"])
