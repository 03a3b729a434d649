"""Time-aligned lyrics: read CCAPI's aligned-lyrics result leniently, and write it as LRC.

The result's shape is not confirmed (reference §3.19: upstream answers `alignment: [...timed segments...]`;
Suno's own API calls them `aligned_words` with `word`, `start_s`, `end_s`, and words carry the line breaks; an
older CCAPI page shows `alignedLyrics: [{time, text}]`). So the reader looks for the first list of timed entries
under any of the known names, takes a start time from any known key (seconds, or milliseconds when the key says
so), and groups words into lines by a line number, by the line breaks inside the words, or by the clip's lyrics.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

__all__ = ["TimedLine", "lrc_text", "timed_lines"]

_LIST_KEYS = (
    "alignment", "aligned_words", "aligned_lyrics", "alignedLyrics", "alignedWords", "words", "lines", "segments",
    "lyrics", "timeline", "data", "result",
)  # fmt: skip
_TEXT_KEYS = ("word", "text", "words", "lyric", "line", "content")
_SECONDS_KEYS = ("start_s", "startS", "start", "start_time", "startTime", "begin", "time", "t")
_MILLISECOND_KEYS = ("start_ms", "startMs", "start_time_ms", "time_ms", "timeMs")
_LINE_KEYS = ("line", "line_index", "lineIndex", "line_number", "lineNumber")
_SECTION = re.compile(r"\s*\[[^\]]*\]\s*")


@dataclass(frozen=True)
class TimedLine:
    """One sung line and when it starts, in seconds from the start of the song."""

    start: float
    text: str


@dataclass(frozen=True)
class _Entry:
    start: float
    text: str
    line: int | None


def timed_lines(result: Any, lyrics: str | None = None) -> list[TimedLine]:
    """The timed lines of an aligned-lyrics result, in time order; [] when none can be read.

    `lyrics` (the clip's plain lyrics) groups bare words into the song's lines when nothing else says where a
    line ends.
    """
    entries = _entries(_timed_list(result, depth=0) or [])
    if not entries:
        return []
    if any(entry.line is not None for entry in entries):
        lines = _by_number(entries)
    elif any("\n" in entry.text for entry in entries):
        lines = _by_breaks(entries)
    elif lyrics and all(" " not in entry.text.strip() for entry in entries):
        lines = _by_lyrics(entries, lyrics)
    else:
        lines = [TimedLine(entry.start, entry.text) for entry in entries]
    cleaned = [TimedLine(line.start, " ".join(_SECTION.sub(" ", line.text).split())) for line in lines]
    return sorted((line for line in cleaned if line.text), key=lambda line: line.start)


def lrc_text(lines: Sequence[TimedLine], *, title: str | None, artist: str, length: float | None) -> str:
    """An LRC file: `[ti:]`, `[ar:]` and `[length:]` headers, then one `[mm:ss.xx]` line per sung line."""
    header = [f"[ti:{_one_line(title)}]"] if title else []
    header.append(f"[ar:{_one_line(artist)}]")
    if length:
        header.append(f"[length:{int(length) // 60:02d}:{int(length) % 60:02d}]")
    body = [f"[{_stamp(line.start)}]{line.text}" for line in lines]
    return "\n".join([*header, *body]) + "\n"


def _stamp(seconds: float) -> str:
    hundredths = round(seconds * 100)
    return f"{hundredths // 6000:02d}:{hundredths // 100 % 60:02d}.{hundredths % 100:02d}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _timed_list(value: Any, *, depth: int) -> list[dict[str, Any]] | None:
    """The first list of objects with a start time, at the top or under a known key (two levels deep at most)."""
    if isinstance(value, list):
        items = [cast(dict[str, Any], item) for item in cast(list[Any], value) if isinstance(item, dict)]
        if items and any(_start(item) is not None for item in items):
            return items
        return None
    if isinstance(value, dict) and depth < 3:
        document = cast(dict[str, Any], value)
        for key in _LIST_KEYS:
            if key in document and (found := _timed_list(document[key], depth=depth + 1)) is not None:
                return found
    return None


def _entries(items: list[dict[str, Any]]) -> list[_Entry]:
    entries: list[_Entry] = []
    for item in items:
        start = _start(item)
        text = next((item[key] for key in _TEXT_KEYS if isinstance(item.get(key), str)), None)
        if start is None or text is None:
            continue
        line = next((number for key in _LINE_KEYS if (number := _number(item.get(key))) is not None), None)
        entries.append(_Entry(start, text, int(line) if line is not None else None))
    return entries


def _start(item: dict[str, Any]) -> float | None:
    for keys, scale in ((_MILLISECOND_KEYS, 1000.0), (_SECONDS_KEYS, 1.0)):
        for key in keys:
            value = _number(item.get(key))
            if value is not None and value >= 0:
                return value / scale
    return None


def _number(value: object) -> float | None:
    """A finite number, or a string holding one (durations may come as decimal strings)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _by_number(entries: list[_Entry]) -> list[TimedLine]:
    lines: dict[int, list[_Entry]] = {}
    for entry in entries:
        lines.setdefault(entry.line if entry.line is not None else -1, []).append(entry)
    return [TimedLine(words[0].start, " ".join(word.text.strip() for word in words)) for words in lines.values()]


def _by_breaks(entries: list[_Entry]) -> list[TimedLine]:
    """Suno-style words: a word holding a line break ends one line, and what follows it starts the next."""
    lines: list[TimedLine] = []
    start, text = entries[0].start, ""
    for entry in entries:
        parts = entry.text.split("\n")
        if not text.strip():
            start = entry.start  # a line starts with its first word (a break may end the word before it)
        text += parts[0]
        for part in parts[1:]:
            lines.append(TimedLine(start, text))
            start, text = entry.start, part
    lines.append(TimedLine(start, text))
    return lines


def _by_lyrics(entries: list[_Entry], lyrics: str) -> list[TimedLine]:
    """Bare words: the lyrics' own lines (section markers left out) say how many words each line holds."""
    counts = [len(line.split()) for line in lyrics.splitlines() if line.strip() and not _SECTION.fullmatch(line)]
    lines: list[TimedLine] = []
    index = 0
    for count in counts:
        words = entries[index : index + count]
        if not words:
            break
        lines.append(TimedLine(words[0].start, " ".join(word.text.strip() for word in words)))
        index += count
    if index < len(entries):
        rest = entries[index:]
        lines.append(TimedLine(rest[0].start, " ".join(word.text.strip() for word in rest)))
    return lines
