"""The words the sandbox invents for a song: a title, lyrics and style tags drawn from the prompt or description.

The same random source (each task's is seeded by its id) gives the same words; section markers such as
`[Chorus]` and common words are left out of the keywords.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

__all__ = ["derive_title", "style_tags", "write_lyrics"]

_GENRES = (
    "pop", "rock", "jazz", "lofi", "hip hop", "electronic", "folk", "ambient", "metal", "classical", "country",
    "soul", "funk", "indie", "house", "techno", "reggae", "blues", "synthwave", "piano", "acoustic", "orchestral",
)  # fmt: skip
_DEFAULT_TAGS = ("pop, light, clean", "indie folk, warm, acoustic", "synthwave, dreamy, retro", "lofi, mellow, soft")
_STOPWORDS = frozenset({
    "a", "an", "the", "and", "or", "but", "of", "for", "to", "in", "on", "at", "by", "with", "about", "from", "into",
    "my", "your", "our", "their", "its", "is", "are", "be", "song", "track", "music", "make", "write", "create",
    "some", "that", "this",
})  # fmt: skip
_VERSE_LINES = (
    "Quiet {a} under a silver sky",
    "I keep the {b} close tonight",
    "Every step a little lighter now",
    "Counting {a}s until the morning light",
    "Footprints fading on the {b}",
    "Holding on to what we found",
)
_CHORUS_LINES = (
    "Oh {a}, carry me home",
    "Sing it out, we're not alone",
    "All the {b} and all the glow",
    "Never let this feeling go",
)


def _keywords(text: str) -> list[str]:
    lines = [line for line in text.splitlines() if not re.fullmatch(r"\s*\[.*\]\s*", line)]
    words = re.findall(r"[A-Za-z0-9']+", " ".join(lines))
    return [word for word in words if word.lower() not in _STOPWORDS]


def derive_title(text: str, fallback: str = "Untitled") -> str:
    """A few capitalised words from a prompt or description."""
    words = _keywords(text)[:4]
    return " ".join(word.capitalize() for word in words) if words else fallback


def write_lyrics(theme: str, rng: random.Random) -> str:
    words = [word.lower() for word in _keywords(theme)] or ["night", "river"]
    a, b = rng.choice(words), rng.choice(words)

    def stanza(lines: Sequence[str], count: int) -> str:
        return "\n".join(line.format(a=a, b=b) for line in rng.sample(list(lines), count))

    verse_1, chorus, verse_2 = stanza(_VERSE_LINES, 4), stanza(_CHORUS_LINES, 3), stanza(_VERSE_LINES, 4)
    return f"[Verse 1]\n{verse_1}\n\n[Chorus]\n{chorus}\n\n[Verse 2]\n{verse_2}"


def style_tags(text: str, rng: random.Random, instrumental: bool) -> str:
    lowered = text.lower()
    found = [genre for genre in _GENRES if re.search(rf"\b{re.escape(genre)}\b", lowered)]
    base = ", ".join(found[:3]) if found else rng.choice(_DEFAULT_TAGS)
    return f"{base}, {'instrumental' if instrumental else 'vocal'}"
