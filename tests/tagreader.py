"""Reading saved songs back as a music library would: mutagen, and Debian's exiftool and ffprobe."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any, cast

from mutagen.id3 import ID3
from mutagen.wave import WAVE

NEEDS = ("exiftool", "ffprobe")  # Debian's independent readers (tests/machine.py installs them)


def id3_end(data: bytes) -> int:
    """Where the audio starts: after the ID3v2 tag at the front (header, syncsafe size, optional footer)."""
    assert data[:3] == b"ID3", data[:10]
    size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
    return 10 + size + (10 if data[5] & 0x10 else 0)


def audio_after_tag(path: Path) -> bytes:
    data = path.read_bytes()
    return data[id3_end(data) :]


def id3_frames(path: Path) -> dict[str, Any]:
    """The ID3 frames of an MP3 or WAV, by frame key (`TIT2`, `USLT::eng`, `TXXX:SUNO_CLIP_ID`...)."""
    tags: Any = ID3(path) if path.suffix == ".mp3" else cast(Any, WAVE(path)).tags  # mutagen is partly typed
    return {str(key): tags[key] for key in tags}


def exiftool(path: Path) -> dict[str, Any]:
    """exiftool's reading of every tag (binary values as `base64:`), keyed by tag name."""
    run = subprocess.run(["exiftool", "-j", "-b", "-a", str(path)], capture_output=True, text=True, check=True)
    return cast(list[dict[str, Any]], json.loads(run.stdout))[0]


def exiftool_user_texts(path: Path) -> list[str]:
    """Every TXXX frame as exiftool prints it, `(NAME) value` (its JSON keeps only one of repeated tags)."""
    run = subprocess.run(
        ["exiftool", "-a", "-s3", "-UserDefinedText", str(path)], capture_output=True, text=True, check=True
    )
    return run.stdout.splitlines()


def exiftool_bytes(value: str) -> bytes:
    assert value.startswith("base64:"), value[:40]
    return base64.b64decode(value.removeprefix("base64:"))


def ffprobe(path: Path) -> dict[str, Any]:
    """ffprobe's format section: its tags and duration."""
    run = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return cast(dict[str, Any], json.loads(run.stdout))
