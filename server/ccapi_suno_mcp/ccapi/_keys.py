"""What a CCAPI key may hold: printable ASCII only, since it travels in an HTTP header."""

from __future__ import annotations

import unicodedata

__all__ = ["key_problem"]

_INVISIBLE = frozenset({"Cc", "Cf", "Cn", "Co", "Cs", "Zl", "Zp", "Zs"})


def key_problem(key: str) -> str | None:
    """Why `key` cannot be sent (its first character outside printable ASCII, named by code point, never the
    key itself), or None when it can."""
    for position, character in enumerate(key):
        if "!" <= character <= "~":
            continue
        code = f"U+{ord(character):04X}"
        name = unicodedata.name(character, "")
        what = f"{code} ({name})" if name else code
        kind = "the invisible character" if unicodedata.category(character) in _INVISIBLE else "the character"
        return (
            f"CCAPI_API_KEY holds {kind} {what} at position {position + 1} of {len(key)}, which no key has "
            "(it was probably pasted along with the key), so nothing was sent to CCAPI: set CCAPI_API_KEY again "
            "without it (a key is plain letters, digits and punctuation, sk-...) and restart the server."
        )
    return None
