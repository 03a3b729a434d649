"""A saved song's companions: its tags (with the cover) inside the file, the JSON sidecar and `.lrc` beside
it, and `kind=release`: every file of one clip gathered into one folder.

Everything is fetched through `_download`'s checked saves (result links only, size and type checked, atomic,
contained). A release never submits anything: exports that do not exist yet are named with the tool that makes
them.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.to_thread
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ResourceLink, TextContent

from ccapi_suno_mcp.ccapi import CCAPIError
from ccapi_suno_mcp.downloads import (
    Container,
    Cover,
    SongFacts,
    container_of,
    lrc_text,
    sidecar_json,
    song_facts,
    timed_lines,
    write_tags,
)
from ccapi_suno_mcp.ledger import ClipRecord, LocalFile
from ccapi_suno_mcp.notifications import clip_uri
from ccapi_suno_mcp.state import AppState
from ccapi_suno_mcp.tools._download import (
    TAGGED_KINDS,
    DownloadResult,
    Finish,
    _target,  # pyright: ignore[reportPrivateUsage] - the one containment check of every saved file
    fetch_small,
    file_extension,
    finished_exports,
    release_folder,
    safe_file_name,
    save_link,
    title_slug,
    url_for,
    write_file,
)

__all__ = ["SavedFiles", "save_file", "save_release"]

MAX_COVER_BYTES = 10 * 1024 * 1024
_COVER_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif"}
_EXPORTS = (("wav", "suno_export_wav"), ("midi", "suno_generate_midi"), ("video", "suno_generate_music_video"))
_STEM_TOOLS = (("stem", "suno_extract_stems"), ("allstems", "suno_extract_all_stems"))
_ALIGNED = "suno_get_aligned_lyrics"


@dataclass
class SavedFiles:
    size: int
    content_type: str
    files: list[Path]
    notes: list[str]


async def song_facts_for(state: AppState, clip: ClipRecord, *, album: str | None = None) -> SongFacts:
    """A clip's facts from the ledger: the task that made it, its lineage, its synced lyrics when known.

    The album is the title of the song it came from (an extension's or a stem's source), or its own title.
    """
    task = await state.ledger.get_task(clip.task_id)
    if album is None:
        parent = await state.ledger.get_clip(task.parent_clip_id) if task and task.parent_clip_id else None
        album = (parent.title if parent else None) or clip.title
    synced = []
    for aligned in await finished_exports(state, clip.clip_id, _ALIGNED):
        if synced := timed_lines(aligned.result, clip.lyrics):
            break
    settings = state.settings
    return song_facts(
        clip, task, artist=settings.artist, album=album, quota_per_usd=settings.quota_per_usd, synced_lyrics=synced
    )


async def fetch_cover(state: AppState, clip: ClipRecord) -> tuple[Cover | None, list[str]]:
    """The clip's cover image in memory, by the rules of any download; a note instead when it cannot be had."""
    if not clip.image_url:
        return None, []
    try:
        data, content_type = await fetch_small(state, clip.image_url, "image", MAX_COVER_BYTES)
    except ToolError as exc:
        return None, [f"cover not embedded: {exc}"]
    except CCAPIError as exc:
        return None, [f"cover not embedded: could not download it ({exc})"]
    if content_type not in _COVER_EXTENSIONS:
        content_type = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    return Cover(data, content_type), []


def _tagged_copy(temp: Path, container: Container, facts: SongFacts, cover: Cover | None) -> tuple[Path, list[str]]:
    """Tag a copy of the checked download; keep the untouched download when tagging fails (disk full included)."""
    fd, name = tempfile.mkstemp(prefix=".partial-", dir=temp.parent)
    os.close(fd)
    copy = Path(name)
    try:
        shutil.copyfile(temp, copy)
        note = write_tags(copy, container, facts, cover)
        if note is None:
            with copy.open("rb+") as written:
                os.fsync(written.fileno())
            return copy, []
    except OSError as exc:
        note = f"tags not written ({exc.strerror or exc})"
    copy.unlink(missing_ok=True)
    return temp, [f"{note}; the file is saved without them"]


def tagger(facts: SongFacts, cover: Cover | None) -> Finish:
    async def finish(temp: Path, head: bytes) -> tuple[Path, list[str]]:
        container = container_of(head)
        if container is None:
            return temp, ["tags not written: this file format is not one tags are written to"]
        return await anyio.to_thread.run_sync(_tagged_copy, temp, container, facts, cover)

    return finish


async def _record(
    state: AppState, path: Path, kind: str, content_type: str, owner: tuple[str | None, str | None]
) -> None:
    await state.ledger.add_local_file(
        LocalFile(
            clip_id=owner[0], task_id=owner[1], kind=kind, path=str(path), size=os.stat(path).st_size,
            content_type=content_type, created_at=time.time(),
        )
    )  # fmt: skip


async def save_file(
    state: AppState,
    url: str,
    kind: str,
    target: Path,
    *,
    song: ClipRecord | None,
    sidecar: bool,
    overwrite: bool,
    owner: tuple[str | None, str | None],
) -> SavedFiles:
    """Save one file; audio, WAV and video carry `song`'s tags, and a song's audio (`sidecar`) gets its `.json`
    sidecar and, when synced lyrics are known, its `.lrc` beside it.

    Raises:
        ToolError: a target is taken or unsafe, or the file fails a check (nothing saved).
    """
    facts, cover, notes = None, None, list[str]()
    if kind in TAGGED_KINDS and song is not None:
        facts = await song_facts_for(state, song)
        cover, notes = await fetch_cover(state, song)
    companions: list[tuple[Path, str]] = []
    if sidecar and facts is not None:  # checked before anything is fetched, like the file itself
        companions.append((_target(target.parent, f"{target.stem}.json", overwrite), "sidecar"))
        if facts.synced_lyrics:
            companions.append((_target(target.parent, f"{target.stem}.lrc", overwrite), "lrc"))
    finish = tagger(facts, cover) if facts is not None else None
    size, content_type, tag_notes = await save_link(
        state, url, kind, target, overwrite=overwrite, owner=owner, finish=finish
    )
    files = [target]
    if facts is not None:
        names = {"audio": target.name, **{what: path.name for path, what in companions}}
        for path, what in companions:
            data = sidecar_json(facts, files=names) if what == "sidecar" else _lrc(facts).encode()
            try:
                write_file(path, data, overwrite=overwrite)
            except ToolError as exc:
                notes.append(f"{what} not saved: {exc}")
                continue
            await _record(state, path, what, "application/json" if what == "sidecar" else "text/plain", owner)
            files.append(path)
    return SavedFiles(size, content_type, files, notes + tag_notes)


def _lrc(facts: SongFacts) -> str:
    return lrc_text(facts.synced_lyrics, title=facts.title, artist=facts.artist, length=facts.duration)


@dataclass
class _Release:
    """One release folder being filled: what was written, what was already there, what went wrong."""

    state: AppState
    folder: Path
    overwrite: bool
    owner: tuple[str | None, str | None]
    written: list[Path] = field(default_factory=lambda: list[Path]())
    kept: list[Path] = field(default_factory=lambda: list[Path]())
    notes: list[str] = field(default_factory=lambda: list[str]())

    def slot(self, name: str) -> Path | None:
        """Where `name` goes; None when it is already there and may not be replaced (kept as it is)."""
        path = self.folder / name
        if not self.overwrite and path.exists() and not path.is_symlink():
            self.kept.append(path)
            return None
        return _target(self.folder, name, self.overwrite)

    async def write(self, name: str, data: bytes, kind: str, content_type: str) -> None:
        if (path := self.slot(name)) is None:
            return
        write_file(path, data, overwrite=self.overwrite)
        await _record(self.state, path, kind, content_type, self.owner)
        self.written.append(path)

    async def fetch(self, url: str, kind: str, name: str, *, facts: SongFacts | None, cover: Cover | None) -> None:
        if (path := self.slot(name)) is None:
            return
        finish = tagger(facts, cover) if facts is not None else None
        owner = (facts.clip_id, facts.task_id) if facts is not None else self.owner
        recorded = "stem" if "-stem" in name else kind
        _, _, notes = await save_link(
            self.state, url, kind, path, overwrite=self.overwrite, owner=owner, finish=finish, recorded_kind=recorded
        )
        self.notes.extend(f"{name}: {note}" for note in notes)
        self.written.append(path)


def _stem_label(stem: ClipRecord) -> str:
    """`Song (Vocals)` -> `vocals`; the clip id when the title says nothing."""
    named = re.search(r"\(([^()]*)\)\s*$", stem.title or "")
    return title_slug(named.group(1)) if named else re.sub(r"[^A-Za-z0-9]", "", stem.clip_id)[:8].lower()


async def save_release(state: AppState, clip: ClipRecord, *, overwrite: bool) -> CallToolResult:
    """Save everything of one clip into its release folder; name the exports not made yet.

    Raises:
        ToolError: the clip is not finished, the folder is unsafe, or its audio cannot be saved.
    """
    task = await state.ledger.get_task(clip.task_id)
    if task is None or task.status != "SUCCESS" or not clip.audio_url:
        raise ToolError(f"Clip {clip.clip_id} is not finished: wait with suno_wait_for_tasks, then save its release.")
    facts = await song_facts_for(state, clip)
    cover, cover_notes = await fetch_cover(state, clip)
    folder = release_folder(state.downloads, safe_file_name(clip.title, clip.clip_id, "audio", ""))
    release = _Release(state, folder, overwrite, (clip.clip_id, clip.task_id), notes=cover_notes)
    base = title_slug(clip.title)
    names = {"audio": f"{base}{file_extension('audio', clip.audio_url)}"}
    await release.fetch(clip.audio_url, "audio", names["audio"], facts=facts, cover=cover)
    if cover is not None:
        names["cover"] = f"cover{_COVER_EXTENSIONS.get(cover.content_type, '.jpg')}"
        await release.write(names["cover"], cover.data, "image", cover.content_type)
    if facts.lyrics:
        names["lyrics"] = "lyrics.txt"
        await release.write(names["lyrics"], facts.lyrics.encode() + b"\n", "lyrics", "text/plain")
    if facts.synced_lyrics:
        names["lrc"] = f"{base}.lrc"
        await release.write(names["lrc"], _lrc(facts).encode(), "lrc", "text/plain")
    missing: list[str] = []
    if facts.lyrics and not facts.synced_lyrics:
        missing.append(f"synced lyrics (.lrc): {_ALIGNED}")
    for kind, tool in _EXPORTS:
        export = next(iter(await finished_exports(state, clip.clip_id, tool)), None)
        url = url_for(kind, clip if kind == "video" else None, export)
        if url is None:
            missing.append(f"{kind}: {tool}")
            continue
        names[kind] = f"{base}-{kind}{file_extension(kind, url)}"
        tags = facts if kind in TAGGED_KINDS else None
        await _saving(release, kind, release.fetch(url, kind, names[kind], facts=tags, cover=cover))
    stem_tasks = [
        (prefix, export)
        for prefix, tool in _STEM_TOOLS
        for export in (await finished_exports(state, clip.clip_id, tool))[:1]
    ]
    if not stem_tasks:
        missing.append(f"stems: {_STEM_TOOLS[0][1]} or {_STEM_TOOLS[1][1]}")
    for prefix, export in stem_tasks:
        for stem in export.clips:
            if not stem.audio_url:
                continue
            name = f"{base}-{prefix}-{_stem_label(stem)}{file_extension('audio', stem.audio_url)}"
            names[f"{prefix}:{_stem_label(stem)}"] = name
            stem_facts = await song_facts_for(state, stem, album=clip.title)
            await _saving(release, name, release.fetch(stem.audio_url, "audio", name, facts=stem_facts, cover=cover))
    names["sidecar"] = f"{base}.json"
    await release.write(names["sidecar"], sidecar_json(facts, files=names), "sidecar", "application/json")
    return _release_result(release, clip, missing)


async def _saving(release: _Release, what: str, saving: Awaitable[None]) -> None:
    """An export that cannot be saved is a note: the rest of the release still comes."""
    try:
        await saving
    except ToolError as exc:
        release.notes.append(f"{what} not saved: {exc}")


def _release_result(release: _Release, clip: ClipRecord, missing: list[str]) -> CallToolResult:
    size = sum(path.stat().st_size for path in release.written)
    notes = [*release.notes]
    if release.kept:
        kept = ", ".join(path.name for path in release.kept)
        notes.append(f"kept what was already there ({kept}); overwrite=true replaces it")
    result = DownloadResult(
        path=str(release.folder), size=size, content_type="inode/directory", kind="release", clip_id=clip.clip_id,
        task_id=clip.task_id, resource_uri=clip_uri(clip.clip_id), files=[str(path) for path in release.written],
        notes=notes, missing=missing,
    )  # fmt: skip
    lines = [
        f"Saved the release of “{clip.title or clip.clip_id}” to {release.folder}: {len(release.written)} files "
        f"({', '.join(path.name for path in release.written) or 'none new'})."
    ]
    if missing:
        lines.append(f"Not made yet (billable, nothing was submitted): {'; '.join(missing)}.")
    lines.extend(f"Note: {note}" for note in notes)
    content: list[Any] = [
        TextContent(type="text", text="\n".join(lines)),
        ResourceLink(type="resource_link", uri=clip_uri(clip.clip_id), name=clip.title or clip.clip_id),
    ]
    return CallToolResult(content=content, structured_content=result.model_dump(mode="json"))
