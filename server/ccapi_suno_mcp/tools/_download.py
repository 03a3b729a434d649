"""`suno_download`: save a clip's audio, cover, video, WAV or MIDI, or its release folder, into the download folder.

Songs carry their tags, sidecar and `.lrc`, and a release gathers a clip's files (`_song`); this module holds the
checks every saved file goes through.

Only links that came from task results are fetched (never a URL from the caller), over https
(or the sandbox's own loopback origin in sandbox mode). The file is checked (size cap, declared
type, magic bytes), written to a temporary file beside the target and renamed into place, so a
half-written download never replaces a good file. Names come from titles, sanitized, and the
target must resolve inside the download folder.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
import time
import unicodedata
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Literal
from urllib.parse import urlsplit

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ResourceLink, TextContent
from pydantic import BaseModel, Field

from ccapi_suno_mcp._disk import saving_error
from ccapi_suno_mcp._json import json_object
from ccapi_suno_mcp.ccapi import CCAPIError, ForbiddenAddressError
from ccapi_suno_mcp.ccapi.requests import ID_PATTERN, TASK_ID_PATTERN
from ccapi_suno_mcp.ledger import ClipRecord, LocalFile, TaskRecord
from ccapi_suno_mcp.notifications import clip_uri
from ccapi_suno_mcp.settings import LOOPBACK_HOSTS
from ccapi_suno_mcp.state import AppState, app_state

__all__ = ["MAX_DOWNLOAD_BYTES", "FileKind", "suno_download"]

MAX_DOWNLOAD_BYTES = 300 * 1024 * 1024
FileKind = Literal["audio", "image", "video", "wav", "midi", "release"]

# kind -> (acceptable content types, file extension); what the first bytes must look like is in _looks_like.
_TYPES: dict[str, tuple[tuple[str, ...], str]] = {
    "audio": (("audio/", "video/mp4"), ""),
    "image": (("image/",), ""),
    "video": (("video/",), ".mp4"),
    "wav": (("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"), ".wav"),
    "midi": (("audio/midi", "audio/x-midi", "audio/mid"), ".mid"),
}


def _looks_like(kind: str, head: bytes) -> bool:
    """Whether a file's first bytes fit its kind (mp3 frames or ID3, WAV, Ogg, FLAC, MP4/M4A, ADTS AAC...)."""
    is_mp4 = head[4:8] == b"ftyp"
    mpeg_frame = len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0  # MP3 frames and ADTS AAC
    if kind == "audio":
        return head.startswith((b"ID3", b"RIFF", b"OggS", b"fLaC")) or is_mp4 or mpeg_frame
    if kind == "image":
        return head.startswith((b"\xff\xd8\xff", b"\x89PNG", b"GIF8")) or (
            head[:4] == b"RIFF" and head[8:12] == b"WEBP"
        )
    if kind == "video":
        return is_mp4 or head.startswith(b"\x1a\x45\xdf\xa3")  # MP4 family or WebM/Matroska
    if kind == "wav":
        return head[:4] == b"RIFF" and head[8:12] == b"WAVE"
    return head.startswith(b"MThd")


_DEFAULT_EXTENSIONS = {"audio": ".mp3", "image": ".jpg"}
_RESULT_KEYS: dict[str, tuple[str, ...]] = {
    "wav": ("wav_url", "audio_url", "url"),
    "midi": ("midi_url", "url"),
    "video": ("video_url", "url"),
    "audio": ("audio_url", "url"),
    "image": ("image_url",),
}
_DERIVED_ACTIONS = {"wav": "suno_export_wav", "midi": "suno_generate_midi", "video": "suno_generate_music_video"}
TAGGED_KINDS = frozenset({"audio", "wav", "video"})
"""What carries the song's tags inside the file (images and MIDI do not)."""


class DownloadResult(BaseModel):
    path: str = Field(description="Absolute path of the saved file (of the folder, for a release).")
    size: int = Field(description="Bytes written.")
    content_type: str
    kind: FileKind
    clip_id: str | None
    task_id: str | None
    resource_uri: str | None = Field(description="The clip's MCP resource, which lists its local files.")
    files: list[str] = Field(description="Every file written (the song's .json sidecar and .lrc too).")
    notes: list[str]
    missing: list[str] = Field(description="Release: exports not made yet, each with the billable tool making it.")


def title_slug(title: str | None) -> str:
    """A title as lower-case ASCII letters, digits and dashes (at most 60), or `suno`."""
    text = unicodedata.normalize("NFKD", title or "").encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:60] or "suno"


def safe_file_name(title: str | None, identifier: str, kind: str, extension: str) -> str:
    """A portable file name from a title: ASCII letters, digits, dashes; never a path."""
    slug = title_slug(title)
    tag = re.sub(r"[^A-Za-z0-9]", "", identifier)[:8] or "file"
    variant = "" if kind == "audio" else f"-{kind}"
    return f"{slug}-{tag}{variant}{extension}"


def url_for(kind: str, clip: ClipRecord | None, task: TaskRecord | None) -> str | None:
    if clip is not None and kind in ("audio", "image", "video"):
        url = {"audio": clip.audio_url, "image": clip.image_url, "video": clip.video_url}[kind]
        if url:
            return url
    if task is not None and task.status == "SUCCESS":
        result = json_object(task.result) or {}
        for key in _RESULT_KEYS[kind]:
            value = result.get(key)
            if isinstance(value, str) and value:
                return value
        if task.result_url and kind != "image":
            return task.result_url
    return None


def file_extension(kind: str, url: str) -> str:
    """The extension a saved file gets: fixed for the export kinds, else the link's own, else the usual one."""
    suffix = Path(urlsplit(url).path).suffix.lower()
    url_extension = suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ""
    return _TYPES[kind][1] or url_extension or _DEFAULT_EXTENSIONS[kind]


async def finished_exports(state: AppState, clip_id: str, tool: str) -> list[TaskRecord]:
    """The finished tasks of `tool` made from this clip, newest first."""
    page = await state.ledger.list_tasks(status="SUCCESS", action=tool, text=clip_id)
    return [task for task in page.tasks if task.parent_clip_id == clip_id]


def _local_emulator(state: AppState) -> str | None:
    """The origin of a CCAPI emulator on this machine (--sandbox, or CCAPI_BASE_URL at `sandbox --port`)."""
    if state.sandbox_url is not None:
        return state.sandbox_url
    parts = urlsplit(state.client.base_url)
    return state.client.base_url if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS else None


def _current_sandbox_link(url: str, sandbox_url: str | None) -> str:
    """In sandbox mode, a media link from an earlier run (another loopback port) points at today's sandbox."""
    parts = urlsplit(url)
    if sandbox_url is None or parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS:
        return url
    if not parts.path.startswith(("/media/", "/stream/")):
        return url
    return sandbox_url.rstrip("/") + parts.path


def _check_origin(url: str, emulator: str | None) -> None:
    parts = urlsplit(url)
    if emulator is not None and url.startswith(emulator.rstrip("/") + "/"):
        return
    if parts.scheme != "https" or not parts.hostname:
        raise ToolError(f"Refusing to download {parts.scheme}:// links: only https links from CCAPI results are used.")


def _target(folder: Path, name: str, overwrite: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    target = root / name
    if target.is_symlink() or target.resolve().parent != root:
        raise ToolError(f"Refusing to write {name}: it would land outside the download folder {root}.")
    if target.exists() and not overwrite:
        raise ToolError(f"{target} already exists: pass overwrite=true to replace it.")
    return target


Finish = Callable[[Path, bytes], Awaitable[tuple[Path, list[str]]]]
"""Called with a checked download's temporary file and first bytes before it is placed: returns the file to place
(the same, or a tagged copy beside it) and notes for the user."""


async def _stream_checked(state: AppState, url: str, kind: str, sink: BinaryIO, limit: int) -> tuple[int, str, bytes]:
    """Copy a result file into `sink`, checking its declared type, its size and its first bytes.

    Returns the size, the content type and the first 16 bytes.

    Raises:
        ToolError: the file is not of `kind`, empty, or larger than `limit`.
        CCAPIError: the host could not be read.
    """
    types, _ = _TYPES[kind]
    size = 0
    head = b""
    async with state.client.open_download(url) as (content_type, chunks):
        if not (content_type.startswith(types) or content_type == "application/octet-stream"):
            raise ToolError(f"The file is {content_type or 'of no declared type'}, not {kind}: not saved.")
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise ToolError(f"The file is larger than {limit // 2**20} MB: not saved.")
            if len(head) < 16:
                head = (head + chunk)[:16]
            sink.write(chunk)
    if size == 0:
        raise ToolError("The file is empty: not saved. Try again later.")
    if not _looks_like(kind, head):
        raise ToolError(f"The file does not look like {kind} data: not saved.")
    return size, content_type, head


def _place(temp: Path, target: Path, *, overwrite: bool) -> None:
    os.chmod(temp, 0o644)  # readable by a music library running as another user (temporary files start 0600)
    if overwrite:
        os.replace(temp, target)
        return
    try:
        os.link(temp, target)  # fails if the name was taken meanwhile: never a silent overwrite
    except FileExistsError:
        raise ToolError(f"{target} already exists: pass overwrite=true to replace it.") from None


def release_folder(folder: Path, name: str) -> Path:
    """A clip's release folder: `name` directly inside the download folder, made if missing, never a link.

    Raises:
        ToolError: the folder would be a link, a file, or outside the download folder.
    """
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    release = root / name
    if release.is_symlink() or (release.exists() and not release.is_dir()):
        raise ToolError(f"Refusing to use {release}: it is not a plain folder inside the download folder {root}.")
    release.mkdir(exist_ok=True)
    if release.resolve().parent != root:
        raise ToolError(f"Refusing to write {name}: it would land outside the download folder {root}.")
    return release


async def _save(
    state: AppState, url: str, kind: str, target: Path, *, overwrite: bool, finish: Finish | None = None
) -> tuple[int, str, list[str]]:
    """Download `url` to `target` through a temporary file beside it; returns size, content type and notes."""
    fd, temp_name = tempfile.mkstemp(prefix=".partial-", dir=target.parent)
    temp, placed = Path(temp_name), Path(temp_name)
    notes: list[str] = []
    try:
        with os.fdopen(fd, "wb") as sink:
            size, content_type, head = await _stream_checked(state, url, kind, sink, MAX_DOWNLOAD_BYTES)
            sink.flush()
            os.fsync(sink.fileno())
        if finish is not None:
            placed, notes = await finish(temp, head)
        _place(placed, target, overwrite=overwrite)
        size = os.stat(target).st_size  # with its tags
    except OSError as exc:
        raise _not_saved(exc, target.parent) from None
    finally:
        for leftover in {temp, placed}:
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    return size, content_type, notes


def _not_saved(error: OSError, folder: Path) -> ToolError:
    """A write into `folder` failed: a full disk or a folder that cannot be written says so, else what the disk
    said; nothing was saved either way."""
    said = saving_error(error, folder)
    if isinstance(said, ToolError):
        return said
    return ToolError(f"Could not write into {folder} ({error.strerror or error}): nothing was saved.")


def write_file(target: Path, data: bytes, *, overwrite: bool) -> None:
    """Write a small file (a sidecar, lyrics, a cover) the same way: a temporary file beside it, then placed.

    Raises:
        ToolError: the name is taken (without `overwrite`) or the disk refused the write.
    """
    fd, temp_name = tempfile.mkstemp(prefix=".partial-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as sink:
            sink.write(data)
            sink.flush()
            os.fsync(sink.fileno())
        _place(Path(temp_name), target, overwrite=overwrite)
    except OSError as exc:
        raise ToolError(f"Could not write {target.name} ({exc.strerror or exc}).") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)


async def fetch_small(state: AppState, url: str, kind: str, limit: int) -> tuple[bytes, str]:
    """A result file read into memory (a cover to embed), by the same rules as any download.

    Raises:
        ToolError: the link or the file fails a check.
        CCAPIError: the host could not be read.
    """
    url = _current_sandbox_link(url, state.sandbox_url)
    _check_origin(url, _local_emulator(state))
    buffer = io.BytesIO()
    _, content_type, _ = await _stream_checked(state, url, kind, buffer, limit)
    return buffer.getvalue(), content_type


async def save_link(
    state: AppState,
    url: str,
    kind: str,
    target: Path,
    *,
    overwrite: bool,
    owner: tuple[str | None, str | None],
    finish: Finish | None = None,
    recorded_kind: str | None = None,
) -> tuple[int, str, list[str]]:
    """Save a result link to `target` (checked, atomic) and record it against `owner` (clip id, task id).

    Raises:
        ToolError: the link or the file fails a check, or the host could not be read.
    """
    url = _current_sandbox_link(url, state.sandbox_url)
    _check_origin(url, _local_emulator(state))
    try:
        size, content_type, notes = await _save(state, url, kind, target, overwrite=overwrite, finish=finish)
    except ForbiddenAddressError as exc:
        raise ToolError(str(exc)) from None
    except OSError as exc:  # the temporary file could not even be made
        raise _not_saved(exc, target.parent) from None
    except CCAPIError as exc:
        raise ToolError(f"Could not download the {kind} file ({exc}); try again shortly.") from None
    await state.ledger.add_local_file(
        LocalFile(
            clip_id=owner[0], task_id=owner[1], kind=recorded_kind or kind, path=str(target), size=size,
            content_type=content_type, created_at=time.time(),
        )
    )  # fmt: skip
    return size, content_type, notes


async def suno_download(
    ctx: Context[AppState, Any],
    clip_id: Annotated[str | None, Field(pattern=ID_PATTERN, description="Clip to save.")] = None,
    kind: Annotated[
        FileKind,
        Field(
            description="audio (tagged mp3 + .json), image, video, wav, midi (need their export task), or release: "
            "a folder of all the clip's files."
        ),
    ] = "audio",
    task_id: Annotated[
        str | None,
        Field(
            pattern=TASK_ID_PATTERN,
            description="Finished task holding the file (e.g. a WAV export).",
        ),
    ] = None,
    overwrite: Annotated[bool, Field(description="Replace an existing file.")] = False,
) -> Annotated[CallToolResult, DownloadResult]:
    """Save a finished clip's files to the download folder, tagged (title, lyrics, cover, ids)
    (checked, atomic, contained, no overwrite unless asked). Free; seconds."""
    from ccapi_suno_mcp.tools import _song  # builds on this module's checked saves

    state = app_state(ctx)
    if clip_id is None and task_id is None:
        raise ToolError("Give clip_id (and kind), or task_id of a finished export task.")
    clip = await state.ledger.get_clip(clip_id) if clip_id else None
    if clip_id and clip is None and task_id is None:
        raise ToolError(f"Unknown clip {clip_id}: find it with suno_list_tasks, or give the task_id that holds it.")
    task = await state.ledger.get_task(task_id) if task_id else None
    if task_id and task is None:
        raise ToolError(f"Unknown task {task_id}: this server did not submit it (see suno_list_tasks).")
    if kind == "release":
        if clip is None:
            raise ToolError("kind=release needs clip_id: the song whose files to gather into one folder.")
        return await _song.save_release(state, clip, overwrite=overwrite)
    if task is None and clip is not None and kind in _DERIVED_ACTIONS:
        task = next(iter(await finished_exports(state, clip.clip_id, _DERIVED_ACTIONS[kind])), None)
    if task is None and clip is not None and kind not in _DERIVED_ACTIONS:
        task = await state.ledger.get_task(clip.task_id)
    if task is not None and task.status != "SUCCESS":
        raise ToolError(f"Task {task.task_id} is {task.status}, not finished: wait with suno_wait_for_tasks.")
    url = url_for(kind, clip, task)
    if url is None:
        hint = f" Run {_DERIVED_ACTIONS[kind]} on the clip first." if kind in _DERIVED_ACTIONS else ""
        raise ToolError(f"No {kind} file is available for this {'clip' if clip else 'task'}.{hint}")
    identifier = clip.clip_id if clip else (task.task_id if task and task.task_id else "file")
    title = clip.title if clip else (task.title if task else None)
    target = _target(state.downloads, safe_file_name(title, identifier, kind, file_extension(kind, url)), overwrite)
    if clip is None and task is not None and task.parent_clip_id and kind != "audio":  # an export of that clip
        song = await state.ledger.get_clip(task.parent_clip_id)
    else:
        song = clip
    owner = (clip.clip_id if clip else None, clip.task_id if clip else (task.task_id if task else None))
    saved = await _song.save_file(
        state, url, kind, target, song=song, sidecar=clip is not None and kind == "audio", overwrite=overwrite,
        owner=owner,
    )  # fmt: skip
    result = DownloadResult(
        path=str(target), size=saved.size, content_type=saved.content_type, kind=kind, clip_id=owner[0],
        task_id=owner[1], resource_uri=clip_uri(clip.clip_id) if clip else None,
        files=[str(path) for path in saved.files], notes=saved.notes, missing=[],
    )  # fmt: skip
    extras = "".join(f", {path.name}" for path in saved.files[1:])
    text = f"Saved {kind} ({saved.size:,} bytes) to {target}" + (f" with {extras[2:]} beside it" if extras else "")
    content: list[Any] = [TextContent(type="text", text=text + "".join(f"\nNote: {note}" for note in saved.notes))]
    if clip is not None:
        content.append(ResourceLink(type="resource_link", uri=clip_uri(clip.clip_id), name=clip.title or clip.clip_id))
    return CallToolResult(content=content, structured_content=result.model_dump(mode="json"))
