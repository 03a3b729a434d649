"""What a saved song carries: its facts, tags inside the file, a JSON sidecar and synced lyrics (LRC)."""

from ._facts import Cover, SongFacts, song_facts
from ._lyrics import TimedLine, lrc_text, timed_lines
from ._sidecar import SIDECAR_FORMAT, sidecar_json
from ._tags import Container, container_of, write_tags

__all__ = [
    "SIDECAR_FORMAT",
    "Container",
    "Cover",
    "SongFacts",
    "TimedLine",
    "container_of",
    "lrc_text",
    "sidecar_json",
    "song_facts",
    "timed_lines",
    "write_tags",
]
