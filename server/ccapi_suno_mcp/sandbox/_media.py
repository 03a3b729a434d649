"""Real, tiny media files: every link the sandbox hands out downloads something a player would accept."""

from __future__ import annotations

import io
import math
import random
import struct
import wave
import zlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

__all__ = ["CONTENT_TYPES", "MediaItem", "MediaKind", "MidiNote", "media_bytes", "midi_notes"]

MediaKind = Literal["audio", "wav", "image", "video", "midi"]
"""`audio` is a song's MP3 (what CCAPI serves for songs); `wav` a WAV export."""

CONTENT_TYPES: dict[MediaKind, str] = {
    "audio": "audio/mpeg",
    "wav": "audio/wav",
    "image": "image/png",
    "video": "video/mp4",
    "midi": "audio/midi",
}

_SAMPLE_RATE = 22_050
_AUDIO_SECONDS = 1.0
_TONES_HZ = (220.0, 246.94, 261.63, 293.66, 329.63, 349.23, 392.0, 440.0)
_SCALE = (60, 62, 64, 65, 67, 69, 71, 72)  # C major, as MIDI pitches
_TICKS_PER_BEAT = 480
_SECONDS_PER_BEAT = 0.5  # 120 bpm


@dataclass(frozen=True)
class MediaItem:
    """A servable file: what it is and the seed that makes its bytes."""

    kind: MediaKind
    seed: str


@dataclass(frozen=True)
class MidiNote:
    pitch: int
    start: float
    end: float
    velocity: int


def media_bytes(item: MediaItem) -> bytes:
    """The file's bytes; the same seed always gives the same bytes."""
    match item.kind:
        case "audio":
            return _mp3(item.seed)
        case "wav":
            return _wav(item.seed)
        case "image":
            return _png(item.seed)
        case "video":
            return _mp4(item.seed)
        case "midi":
            return _midi(item.seed)


def midi_notes(seed: str, count: int = 8) -> list[MidiNote]:
    """A short deterministic melody: the notes behind both a MIDI result's JSON and its `.mid` file."""
    rng = random.Random(seed)
    notes: list[MidiNote] = []
    for index in range(count):
        start = index * _SECONDS_PER_BEAT
        notes.append(MidiNote(rng.choice(_SCALE), start, start + _SECONDS_PER_BEAT, rng.randint(70, 110)))
    return notes


@lru_cache(maxsize=32)
def _wav(seed: str) -> bytes:
    """1 s of a sine tone, 16-bit mono, with short fades so it does not click."""
    tone = random.Random(seed).choice(_TONES_HZ)
    frames = int(_SAMPLE_RATE * _AUDIO_SECONDS)
    fade = _SAMPLE_RATE // 50
    samples = [
        int(9_000 * min(1.0, i / fade, (frames - i) / fade) * math.sin(2 * math.pi * tone * i / _SAMPLE_RATE))
        for i in range(frames)
    ]
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(_SAMPLE_RATE)
        out.writeframes(struct.pack(f"<{frames}h", *samples))
    return buffer.getvalue()


# One MPEG-1 Layer III frame header: 64 kbit/s, 48 kHz, no CRC, no padding, mono. At 48 kHz every frame is
# exactly 144 * 64000 / 48000 = 192 bytes long and lasts 1152 samples (24 ms).
_MP3_HEADER = bytes((0xFF, 0xFB, 0x54, 0xC4))
_MP3_FRAME_BYTES = 192


@lru_cache(maxsize=32)
def _mp3(seed: str) -> bytes:
    """About 2 s of silence as real MP3 frames: all-zero side information and main data decode to silence, so
    every decoder (browsers, ffmpeg, mutagen) reads valid frames without an encoder. The length depends on the seed.
    """
    frames = 80 + random.Random(seed).randrange(20)
    return (_MP3_HEADER + bytes(_MP3_FRAME_BYTES - len(_MP3_HEADER))) * frames


def _png(seed: str, size: int = 48) -> bytes:
    """A small two-colour diagonal gradient (cover art)."""
    rng = random.Random(seed)
    first = [rng.randrange(256) for _ in range(3)]
    second = [rng.randrange(256) for _ in range(3)]
    rows = bytearray()
    for y in range(size):
        rows.append(0)  # filter type: none
        for x in range(size):
            mix = (x + y) / (2 * (size - 1))
            rows.extend(round(a + (b - a) * mix) for a, b in zip(first, second, strict=True))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    chunks = (_png_chunk(b"IHDR", header), _png_chunk(b"IDAT", zlib.compress(bytes(rows))), _png_chunk(b"IEND", b""))
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _mp4(seed: str) -> bytes:
    """An ISO-BMFF file: a valid `ftyp` box, a `moov` with its movie header (so tag writers accept it), then a
    `free` box and an opaque `mdat` payload."""
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isom" + b"iso2" + b"mp41")
    identity = (0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)  # the unit transformation matrix
    mvhd = _box(
        b"mvhd",
        struct.pack(">IIIII", 0, 0, 0, 1000, 2000)  # version and flags, times, 1000 units a second, 2 s
        + struct.pack(">IH", 0x10000, 0x100)  # rate 1.0, volume 1.0
        + bytes(10)
        + struct.pack(">9I", *identity)
        + bytes(24)
        + struct.pack(">I", 1),  # next track id
    )
    free = _box(b"free", f"ccapi-suno-mcp sandbox video {seed}".encode())
    mdat = _box(b"mdat", random.Random(seed).randbytes(256))
    return ftyp + _box(b"moov", mvhd) + free + mdat


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _midi(seed: str) -> bytes:
    """A format-0 Standard MIDI File playing the notes of `midi_notes(seed)` on a piano."""
    ticks_per_second = _TICKS_PER_BEAT / _SECONDS_PER_BEAT
    timed: list[tuple[int, bytes]] = []
    for note in midi_notes(seed):
        timed.append((round(note.start * ticks_per_second), bytes((0x90, note.pitch, note.velocity))))
        timed.append((round(note.end * ticks_per_second), bytes((0x80, note.pitch, 0))))
    timed.sort(key=lambda event: (event[0], event[1][0] != 0x80))  # note-offs before note-ons at the same tick
    track = bytearray(_vlq(0) + b"\xff\x51\x03" + (500_000).to_bytes(3, "big"))  # tempo: 120 bpm
    track += _vlq(0) + b"\xc0\x00"  # program change: acoustic grand piano
    now = 0
    for tick, event in timed:
        track += _vlq(tick - now) + event
        now = tick
    track += _vlq(0) + b"\xff\x2f\x00"  # end of track
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, _TICKS_PER_BEAT)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


def _vlq(value: int) -> bytes:
    """MIDI variable-length quantity."""
    groups = [value & 0x7F]
    value >>= 7
    while value:
        groups.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(groups))
