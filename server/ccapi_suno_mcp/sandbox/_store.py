"""Optional persistence of the sandbox's state: one JSON file, rewritten atomically after every change.

The file (version 1) holds the accounts and every task with what it made::

    {"format": "ccapi-suno-mcp sandbox state", "version": 1, "next_row_id": 3,
     "accounts": [{"key_sha256": "9f86d0…", "user_id": 1, "granted_quota": 5000000}],
     "tasks": [
     {"row_id": 1, "task_id": "task_…", "upstream_id": "…", "owner": "9f86d0…", "action": "MUSIC", "quota": 40000,
      "submitted_at": 1773385996.0, "accepted_at": …, "started_at": …, "finishes_at": …,
      "outcome": "success", "fail_reason": "", "result": {"clips": [{"clip_id": "…", "audio_url": "/media/….mp3", …}]},
      "clips": [{"clip_id": "…", "extends": null}], "media": {"….mp3": ["audio", "…"]}}
     ]}

- Keys are stored as their SHA-256 only; balances follow from `granted_quota` and the tasks (failed ones refunded).
- Links are origin-relative (`/media/…`, `/stream/…`); the sandbox renders them under its current origin.
- Times are absolute clock readings, so a task submitted before a restart finishes when it always would have.
- `clips` lists the clips the task made (their documents are in `result.clips`); `media`, the files it made.
- `result_url` and the streaming previews are derived from `result` on load, not stored.

Tasks never change once created, so each task entry is encoded once and cached: a save joins cached text,
writes it to a temporary file in the same folder, fsyncs it and renames it over the old file.

Several sandboxes may keep one file (two `--sandbox` servers on one `CCAPI_SUNO_HOME`, say, one per MCP client):
a save first takes in what the others wrote (under a lock on the file's folder, POSIX only), so the file holds every
sandbox's tasks; and each request first reads what the others wrote, when the file changed since it last looked. Since
tasks never change, taking them in is a union, and all the sandboxes answer alike for each task.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import tempfile
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel

from ._actions import ACTIONS
from ._media import MediaItem, MediaKind
from ._results import previews, primary_link
from ._tasks import Account, Clip, Outcome, TaskRecord

__all__ = ["FORMAT", "VERSION", "SavedState", "StateFile"]

logger = logging.getLogger(__name__)

FORMAT = "ccapi-suno-mcp sandbox state"
VERSION = 1


class _AccountEntry(BaseModel):
    key_sha256: str
    user_id: int
    granted_quota: int


class _ClipEntry(BaseModel):
    clip_id: str
    extends: tuple[str, float] | None


class _TaskEntry(BaseModel):
    row_id: int
    task_id: str
    upstream_id: str
    owner: str
    action: str
    quota: int
    submitted_at: float
    accepted_at: float
    started_at: float
    finishes_at: float
    outcome: Outcome
    fail_reason: str
    result: dict[str, Any]
    clips: list[_ClipEntry]
    media: dict[str, tuple[MediaKind, str]]


class _StateEntry(BaseModel):
    format: Literal["ccapi-suno-mcp sandbox state"]
    version: Literal[1]
    next_row_id: int
    accounts: list[_AccountEntry]
    tasks: list[_TaskEntry]


@dataclass
class SavedState:
    """Everything the sandbox remembers, as it is held in memory."""

    accounts: dict[str, Account] = field(default_factory=dict[str, Account])
    """By `key_sha256`."""
    tasks: dict[str, TaskRecord] = field(default_factory=dict[str, TaskRecord])
    clips: dict[str, Clip] = field(default_factory=dict[str, Clip])
    media: dict[str, MediaItem] = field(default_factory=dict[str, MediaItem])
    next_row_id: int = 1


class StateFile:
    """The sandbox's state on disk: read once at start, rewritten in full after every change."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._entries: dict[str, str] = {}
        """Encoded task entries, by task id, in creation order."""
        self._seen: tuple[int, int, int] | None = None
        """The file as this sandbox last read or wrote it (`_stamp`): when it differs, another one wrote it."""

    def load(self) -> SavedState | None:
        """The saved state, or `None` when there is none to use.

        A missing file gives `None`. So does a file that cannot be read or understood: that is logged, and the
        file is moved aside (to `<name>.corrupt`) so a fresh state can take its place.
        """
        try:
            stamp = _stamp(self.path)
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            self._set_aside(error)
            return None
        try:
            state, made = _decode(raw)
        except (ValueError, LookupError, TypeError, AttributeError, RecursionError) as error:
            self._set_aside(error)
            return None
        self._seen = stamp
        self._entries.clear()
        for task in state.tasks.values():
            clips, media = made[task.task_id]
            self.add_task(task, clips, media)
        logger.info(
            "sandbox: loaded %d tasks and %d accounts from %s", len(state.tasks), len(state.accounts), self.path
        )
        return state

    def add_task(self, task: TaskRecord, clips: Iterable[Clip], media: dict[str, MediaItem]) -> None:
        """Remember a new task (with the clips and files it made) for the next save."""
        self._entries[task.task_id] = json.dumps(_task_entry(task, clips, media), separators=(",", ":"))

    def save(self, *, next_row_id: int, accounts: dict[str, Account]) -> SavedState:
        """Write the whole state atomically: a crash leaves the old file or the new one, never a mix.

        What other sandboxes wrote to the file meanwhile is kept (see `news`). Returns it: the sandbox takes it in.

        Raises:
            OSError: if the file cannot be written (the old file, if any, is left as it was).
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            seen = self._seen
            news = self._news(accounts)
            known = {**news.accounts, **accounts}
            accounts_json = json.dumps(
                [
                    {"key_sha256": key, "user_id": account.user_id, "granted_quota": account.granted_quota}
                    for key, account in known.items()
                ]
            )
            row_id = max(next_row_id, news.next_row_id)
            head = f'{{"format":{json.dumps(FORMAT)},"version":{VERSION},"next_row_id":{row_id}'
            tasks = ",\n".join(self._entries.values())
            text = f'{head},"accounts":{accounts_json},"tasks":[\n{tasks}\n]}}\n'
            try:
                _write_atomically(self.path, text.encode())
            except OSError:
                # The caller takes nothing in: forget what was read, so the next save or `news` hands it over.
                self._seen = seen
                for task_id in news.tasks:
                    del self._entries[task_id]
                raise
            self._seen = _stamp(self.path)
        return news

    def news(self, accounts: dict[str, Account]) -> SavedState:
        """What other sandboxes wrote to the file since this one last read or wrote it: their new accounts and
        tasks (owned by the `accounts` given where the key is the same). Empty when the file has not changed."""
        if _stamp(self.path) == self._seen:
            return SavedState()
        try:
            with self._locked():
                return self._news(accounts)
        except OSError as error:  # the folder is gone or unreadable: nothing to take in (a save says why it fails)
            logger.debug("sandbox: cannot look at %s (%s)", self.path, error)
            return SavedState()

    def _news(self, accounts: dict[str, Account]) -> SavedState:
        stamp = _stamp(self.path)
        news = SavedState()
        if stamp is None or stamp == self._seen:
            return news
        try:
            state, made = _decode(self.path.read_bytes())
        except (OSError, ValueError, LookupError, TypeError, AttributeError, RecursionError) as error:
            logger.warning("sandbox: cannot read what others wrote to %s (%s); keeping this state", self.path, error)
            return news
        self._seen = stamp
        news.next_row_id = state.next_row_id
        news.accounts = {key: account for key, account in state.accounts.items() if key not in accounts}
        for task_id, task in state.tasks.items():
            if task_id in self._entries:
                continue
            owner = accounts.get(task.owner.key_sha256, task.owner)
            task = dataclasses.replace(task, owner=owner) if owner is not task.owner else task
            clips, media = made[task_id]
            news.tasks[task_id] = task
            news.clips.update((clip.clip_id, clip) for clip in clips)
            news.media.update(media)
            self.add_task(task, clips, media)
        return news

    def _set_aside(self, error: Exception) -> None:
        aside = self.path.with_name(self.path.name + ".corrupt")
        try:
            os.replace(self.path, aside)
        except OSError as move_error:
            logger.error(
                "sandbox: cannot read the state file %s (%s), nor move it aside (%s); starting with a fresh state",
                self.path,
                error,
                move_error,
            )
        else:
            logger.error(
                "sandbox: cannot read the state file %s (%s); it was moved to %s and the sandbox starts afresh",
                self.path,
                error,
                aside,
            )

    @contextlib.contextmanager
    def _locked(self) -> Generator[None]:
        """Held while reading what others wrote and writing: one sandbox at a time. The lock is on the file's
        folder (the file itself is replaced on every save); POSIX only: elsewhere, two sandboxes saving at the same
        instant may lose one's newest task from the file."""
        try:
            import fcntl
        except ImportError:
            yield
            return
        folder = os.open(self.path.parent, os.O_RDONLY)
        try:
            fcntl.flock(folder, fcntl.LOCK_EX)
            yield
        finally:
            os.close(folder)  # releases the lock


def _task_entry(task: TaskRecord, clips: Iterable[Clip], media: dict[str, MediaItem]) -> dict[str, object]:
    return {
        "row_id": task.row_id,
        "task_id": task.task_id,
        "upstream_id": task.upstream_id,
        "owner": task.owner.key_sha256,
        "action": task.action,
        "quota": task.quota,
        "submitted_at": task.submitted_at,
        "accepted_at": task.accepted_at,
        "started_at": task.started_at,
        "finishes_at": task.finishes_at,
        "outcome": task.outcome,
        "fail_reason": task.fail_reason,
        "result": task.result,
        "clips": [{"clip_id": clip.clip_id, "extends": clip.extends} for clip in clips],
        "media": {name: [item.kind, item.seed] for name, item in media.items()},
    }


_Made = dict[str, tuple[list[Clip], dict[str, MediaItem]]]


def _decode(raw: bytes) -> tuple[SavedState, _Made]:
    """The state in a file's bytes, and per task the clips and files it made.

    Raises:
        ValueError: if the bytes are not a state this version understands.
    """
    data: object = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    version = cast(dict[str, object], data).get("version")
    if version != VERSION:
        raise ValueError(f"unsupported version {version!r} (this sandbox reads version {VERSION})")
    entry = _StateEntry.model_validate(data)
    state = SavedState()
    for account in entry.accounts:
        if account.key_sha256 in state.accounts:
            raise ValueError(f"account {account.key_sha256} appears twice")
        state.accounts[account.key_sha256] = Account(account.key_sha256, account.user_id, account.granted_quota)
    made: _Made = {}
    for task_entry in entry.tasks:
        if task_entry.task_id in state.tasks:
            raise ValueError(f"task {task_entry.task_id} appears twice")
        task, clips, media = _task(task_entry, state.accounts)
        state.tasks[task.task_id] = task
        state.clips.update((clip.clip_id, clip) for clip in clips)
        state.media.update(media)
        made[task.task_id] = (clips, media)
    state.next_row_id = max([entry.next_row_id, *(task.row_id + 1 for task in state.tasks.values())])
    return state, made


def _task(entry: _TaskEntry, accounts: dict[str, Account]) -> tuple[TaskRecord, list[Clip], dict[str, MediaItem]]:
    owner = accounts.get(entry.owner)
    if owner is None:
        raise ValueError(f"task {entry.task_id}: unknown owner {entry.owner}")
    spec = ACTIONS.get(entry.action)
    if spec is None:
        raise ValueError(f"task {entry.task_id}: unknown action {entry.action}")
    result = entry.result
    documents = {document["clip_id"]: document for document in _documents(result)}
    clips: list[Clip] = []
    for produced in entry.clips:
        clip_id = produced.clip_id
        document = documents.get(clip_id)
        if document is None:
            raise ValueError(f"task {entry.task_id}: clip {clip_id} is not in its result")
        title, tags, lyrics = (_text(document, name) for name in ("title", "tags", "lyrics"))
        duration = document.get("duration")
        if isinstance(duration, bool) or not isinstance(duration, int | float):
            raise ValueError(f"clip {clip_id}: duration must be a number")
        clips.append(
            Clip(clip_id, entry.task_id, owner.key_sha256, title, tags, lyrics, duration, document, produced.extends)
        )
    task = TaskRecord(
        row_id=entry.row_id,
        task_id=entry.task_id,
        upstream_id=entry.upstream_id,
        owner=owner,
        action=entry.action,
        quota=entry.quota,
        submitted_at=entry.submitted_at,
        accepted_at=entry.accepted_at,
        started_at=entry.started_at,
        finishes_at=entry.finishes_at,
        outcome=entry.outcome,
        fail_reason=entry.fail_reason,
        result=result,
        result_url=primary_link(result),
        streaming_clips=previews(result) if spec.streams else [],
    )
    media = {name: MediaItem(kind, seed) for name, (kind, seed) in entry.media.items()}
    return task, clips, media


def _documents(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The clip documents of a result, checked to be objects with a string `clip_id` and `audio_url`."""
    clips: object = result.get("clips", [])
    if not isinstance(clips, list):
        raise ValueError("result.clips must be a list")
    documents = cast(list[object], clips)
    for document in documents:
        if not isinstance(document, dict):
            raise ValueError("result.clips must hold objects")
        for name in ("clip_id", "audio_url"):
            _text(cast(dict[str, Any], document), name)
    return cast(list[dict[str, Any]], documents)


def _text(document: dict[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str):
        raise ValueError(f"clip field {name} must be a string")
    return value


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """Which version of the file is there (inode, size, modification time), or None when there is none."""
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_ino, status.st_size, status.st_mtime_ns


def _write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync it, then rename it over `path`.

    The folder itself is not fsynced: that would only make the rename survive a power cut (at twice the cost of
    a save), and an emulator's state need not outlive one; readers see the old file or the new one, never a mix.

    Raises:
        OSError: if any step fails (the temporary file is removed; `path` is untouched).
    """
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
