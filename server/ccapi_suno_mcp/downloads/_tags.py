"""Tags inside the saved file, written with mutagen: ID3v2.4 in MP3 and WAV, iTunes atoms in MP4/M4A.

Only the tag region changes: mutagen inserts or rewrites the ID3 tag (at the front of an MP3, in the `id3 `
chunk of a WAV) or the `moov/udta/meta` atoms of an MP4; the audio frames are left as they were. The caller
tags a copy of the downloaded file and keeps the untagged one when tagging fails, so a failure never costs the
download.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from mutagen import MutagenError
from mutagen.id3 import APIC, ID3, SYLT, TALB, TCON, TDRC, TIT2, TPE1, TXXX, USLT, ID3NoHeaderError
from mutagen.mp4 import MP4, MP4Cover, MP4FreeForm
from mutagen.wave import WAVE

from ._facts import Cover, SongFacts

__all__ = ["Container", "container_of", "write_tags"]

Container = Literal["mp3", "wav", "mp4"]
_UTF8 = 3  # ID3 text encoding
_MILLISECONDS = 2  # SYLT time stamp format
_LYRICS = 1  # SYLT content type
_FRONT_COVER = 3  # APIC picture type
_FREEFORM = "----:com.apple.iTunes:"


def container_of(head: bytes) -> Container | None:
    """The tag format a file takes, from its first bytes (None: one this module does not tag)."""
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE6 == 0xE2):  # MPEG Layer III
        return "mp3"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[4:8] == b"ftyp":
        return "mp4"
    return None


def _custom(facts: SongFacts) -> dict[str, str]:
    """The facts a music library has no field for, kept as named text (TXXX frames, iTunes freeform atoms)."""
    values = {
        "SUNO_CLIP_ID": facts.clip_id,
        "SUNO_TASK_ID": facts.task_id,
        "SUNO_MODEL": facts.model,
        "SUNO_PROMPT": facts.prompt,
        "SUNO_DESCRIPTION": facts.description,
        "SUNO_STYLE": facts.style,
        "SUNO_PARENT_CLIP_ID": facts.parent_clip_id,
        "SUNO_PARENT_TASK_ID": facts.parent_task_id,
    }
    return {name: value for name, value in values.items() if value}


def _id3_frames(tags: Any, facts: SongFacts, cover: Cover | None) -> None:
    def text(frame: Any, value: str | None) -> None:
        if value:
            tags.setall(frame.__name__, [frame(encoding=_UTF8, text=[value])])

    text(TIT2, facts.title)
    text(TPE1, facts.artist)
    text(TALB, facts.album)
    text(TCON, facts.genre)
    text(TDRC, facts.date)
    if facts.lyrics:
        tags.setall("USLT", [USLT(encoding=_UTF8, lang="eng", desc="", text=facts.lyrics)])
    if facts.synced_lyrics:
        timed = [(line.text, round(line.start * 1000)) for line in facts.synced_lyrics]
        tags.setall("SYLT", [SYLT(encoding=_UTF8, lang="eng", format=_MILLISECONDS, type=_LYRICS, desc="", text=timed)])
    if cover is not None:
        tags.setall(
            "APIC", [APIC(encoding=_UTF8, mime=cover.content_type, type=_FRONT_COVER, desc="Cover", data=cover.data)]
        )
    for name, value in _custom(facts).items():
        tags.setall(f"TXXX:{name}", [TXXX(encoding=_UTF8, desc=name, text=[value])])


def _tag_mp3(path: Path, facts: SongFacts, cover: Cover | None) -> None:
    tags: Any  # mutagen's types are partial
    try:
        tags = ID3(path)
    except ID3NoHeaderError:
        tags = ID3()
    _id3_frames(tags, facts, cover)
    tags.save(path, v2_version=4)


def _tag_wav(path: Path, facts: SongFacts, cover: Cover | None) -> None:
    audio: Any = WAVE(path)
    if audio.tags is None:
        audio.add_tags()
    _id3_frames(audio.tags, facts, cover)
    audio.save(v2_version=4)


def _tag_mp4(path: Path, facts: SongFacts, cover: Cover | None) -> None:
    audio: Any = MP4(path)
    if audio.tags is None:
        audio.add_tags()
    tags: Any = audio.tags
    for key, value in (
        ("\xa9nam", facts.title),
        ("\xa9ART", facts.artist),
        ("\xa9alb", facts.album),
        ("\xa9gen", facts.genre),
        ("\xa9day", facts.date),
        ("\xa9lyr", facts.lyrics),
    ):
        if value:
            tags[key] = [value]
    if cover is not None:
        image_format = MP4Cover.FORMAT_PNG if cover.content_type == "image/png" else MP4Cover.FORMAT_JPEG
        tags["covr"] = [MP4Cover(cover.data, imageformat=image_format)]
    for name, value in _custom(facts).items():
        tags[_FREEFORM + name] = [MP4FreeForm(value.encode())]
    audio.save()


_WRITERS = {"mp3": _tag_mp3, "wav": _tag_wav, "mp4": _tag_mp4}


def write_tags(path: Path, container: Container, facts: SongFacts, cover: Cover | None) -> str | None:
    """Write the facts (and the cover) into the file at `path`; None when done, else why not (a note for people).

    Raises:
        OSError: the file could not be written (a full disk, say): the file may be damaged, do not keep it.
    """
    try:
        _WRITERS[container](path, facts, cover)
    except MutagenError as exc:
        return f"tags not written ({container} file mutagen could not change: {exc})"
    return None
