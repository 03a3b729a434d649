"""Request models, one per Suno action.

Field names here are the ones a user (or a model) sees: `lyrics`, `description`, `model`,
`clip_id`. The names CCAPI expects on the wire (`prompt`, `gpt_description_prompt`, `mv`,
`continue_clip_id`...) are mostly unconfirmed, so they are not written here: they live in the
catalogue's one table of unknowns, where users can override them. Limits and enums are in the
models so that bad input is refused before anything billable is sent.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Self, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ccapi_suno_mcp.ccapi._constants import ID_PATTERN, TASK_ID_PATTERN

__all__ = [
    "EXTRA_MAX_BYTES",
    "EXTRA_MAX_DEPTH",
    "EXTRA_MAX_KEYS",
    "ID_PATTERN",
    "TASK_ID_PATTERN",
    "AddInstrumentalRequest",
    "AddVocalsRequest",
    "ConcatenateMusicRequest",
    "CreateCoverRequest",
    "CreateVoicePersonaRequest",
    "DetectBpmRequest",
    "ExportWavRequest",
    "ExtendMusicRequest",
    "ExtractAllStemsRequest",
    "ExtractStemsRequest",
    "ExtractVocalsRequest",
    "GenerateLyricsRequest",
    "GenerateMidiRequest",
    "GenerateMusicRequest",
    "GenerateMusicVideoRequest",
    "GenerateSoundsRequest",
    "GetAlignedLyricsRequest",
    "MashupMusicRequest",
    "ModelVersion",
    "RemasterMusicRequest",
    "ReplaceSectionRequest",
    "SampleSectionRequest",
    "SunoRequest",
    "UploadAudioRequest",
    "UpsampleTagsRequest",
]

ModelVersion = Literal["v3.5", "v4", "v4.5", "v4.5+", "v5", "v5.5"]
_OLD_MODELS: frozenset[str] = frozenset({"v3.5", "v4"})
_OLD_LYRICS_MAX, LYRICS_MAX = 3000, 5000
_OLD_TAGS_MAX, TAGS_MAX = 200, 1000


EXTRA_MAX_BYTES = 32_768
"""The most `extra` may weigh as JSON (UTF-8): a few unmodelled fields, not a payload of its own."""
EXTRA_MAX_KEYS = 100
"""The most names `extra` may hold, nested objects' included."""
EXTRA_MAX_DEPTH = 10
"""How deep `extra` may nest: `{"a": 1}` is 1 level, `{"a": {"b": 1}}` 2."""

Weight = Annotated[float | None, Field(ge=0, le=1)]
Seconds = Annotated[float | None, Field(ge=0, le=3600)]


def _require_order(
    start: float | None, end: float | None, start_name: str = "start_s", end_name: str = "end_s"
) -> None:
    """Refuse a time range whose end is not after its start (either end may be left open)."""
    if start is not None and end is not None and end <= start:
        raise ValueError(f"{end_name} must be greater than {start_name}")


def _depth_and_keys(value: Any) -> tuple[int, int]:
    """How deep a JSON value nests (a scalar: 0) and how many object keys it holds, without recursion."""
    deepest, keys = 0, 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = list(cast(dict[str, Any], item).values())
            keys += len(children)
        elif isinstance(item, list):
            children = cast(list[Any], item)
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest, keys


class SunoRequest(BaseModel):
    """Base of every action's request: forbids unknown names, carries `extra` for unmodelled fields."""

    model_config = ConfigDict(extra="forbid", defer_build=True)  # validators are built on first call, not at start

    extra: dict[str, Any] | None = Field(
        default=None,
        description="Unmodelled CCAPI fields.",
    )

    @field_validator("extra")
    @classmethod
    def _plain_json(cls, extra: dict[str, Any] | None) -> dict[str, Any] | None:
        if extra is None:
            return None
        depth, keys = _depth_and_keys(extra)
        if depth > EXTRA_MAX_DEPTH:
            raise ValueError(f"extra: nests {depth} levels deep; at most {EXTRA_MAX_DEPTH}")
        if keys > EXTRA_MAX_KEYS:
            raise ValueError(f"extra: holds {keys} keys (nested ones included); at most {EXTRA_MAX_KEYS}")
        try:
            size = len(json.dumps(extra, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode())
        except ValueError:
            # JSON has no NaN or Infinity, but a lenient JSON-RPC parser lets them through.
            raise ValueError("extra: NaN and Infinity are not JSON numbers; send plain JSON values") from None
        if size > EXTRA_MAX_BYTES:
            raise ValueError(f"extra: is {size:,} bytes as JSON; at most {EXTRA_MAX_BYTES:,}")
        return extra

    def payload(self) -> dict[str, Any]:
        """The set fields, by our names, plus `custom_mode` where the action has one."""
        return self.model_dump(exclude_none=True, exclude={"extra"})


class _SourceClip(SunoRequest):
    """A follow-up on an existing clip; the clip's parent task id goes along (new-api's rule)."""

    clip_id: Annotated[
        str,
        Field(
            pattern=ID_PATTERN,
            description="Source clip.",
        ),
    ]
    task_id: Annotated[
        str | None,
        Field(
            pattern=TASK_ID_PATTERN,
            description="Rarely needed: its task_id.",
        ),
    ] = None


class _Style(SunoRequest):
    """Style fields shared by the generating actions."""

    model: Annotated[
        ModelVersion | None,
        Field(description="Suno model."),
    ] = None
    title: Annotated[str | None, Field(min_length=1, max_length=80, description="Song title.")] = None
    tags: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=TAGS_MAX,
            description="Comma-separated styles (≤200 on v3.5, v4).",
        ),
    ] = None
    negative_tags: Annotated[str | None, Field(min_length=1, max_length=TAGS_MAX, description="Styles to avoid.")] = (
        None
    )
    style_weight: Annotated[Weight, Field(description="Tag adherence.")] = None
    weirdness_constraint: Annotated[Weight, Field(description="How experimental.")] = None

    @model_validator(mode="after")
    def _limits_of_older_models(self) -> Self:
        if self.model in _OLD_MODELS:
            lyrics: str | None = getattr(self, "lyrics", None)
            if lyrics is not None and len(lyrics) > _OLD_LYRICS_MAX:
                raise ValueError(
                    f"lyrics: model {self.model} takes at most {_OLD_LYRICS_MAX} characters "
                    f"(got {len(lyrics)}); shorten them or use model v4.5 or later"
                )
            for name in ("tags", "negative_tags"):
                value: str | None = getattr(self, name)
                if value is not None and len(value) > _OLD_TAGS_MAX:
                    raise ValueError(
                        f"{name}: model {self.model} takes at most {_OLD_TAGS_MAX} characters "
                        f"(got {len(value)}); shorten them or use model v4.5 or later"
                    )
        return self


_Lyrics = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=LYRICS_MAX,
        description="Lyrics to sing (≤3000 on v3.5, v4); or description.",
    ),
]
_Description = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=400,
        description="What it is about (Suno writes lyrics); or lyrics.",
    ),
]


class _Prompted(_Style):
    """Actions steered by lyrics (custom mode) or by a description (Suno writes the lyrics)."""

    lyrics: _Lyrics = None
    description: _Description = None

    @model_validator(mode="after")
    def _lyrics_or_description(self) -> Self:
        if self.lyrics is not None and self.description is not None:
            raise ValueError("give either lyrics (sung as written) or description (Suno writes lyrics), not both")
        return self

    def payload(self) -> dict[str, Any]:
        body = super().payload()
        if self.lyrics is not None or self.description is not None:
            body["custom_mode"] = self.description is None
        return body


class GenerateMusicRequest(_Prompted):
    instrumental: Annotated[bool, Field(description="No vocals.")] = False

    @model_validator(mode="after")
    def _something_to_make(self) -> Self:
        if self.lyrics is None and self.description is None and not (self.instrumental and self.tags):
            raise ValueError(
                "say what to make: give description (Suno writes the lyrics) or lyrics (sung as written); "
                "an instrumental needs at least tags"
            )
        return self

    def payload(self) -> dict[str, Any]:
        body = super().payload()
        body.setdefault("custom_mode", True)  # an instrumental from tags alone is custom mode
        return body


class GenerateLyricsRequest(SunoRequest):
    prompt: Annotated[
        str,
        Field(min_length=1, max_length=3000, description="Theme, mood, structure."),
    ]


class ExtendMusicRequest(_SourceClip, _Prompted):
    continue_at: Annotated[
        float,
        Field(ge=0, le=3600, description="Second to continue from (< clip duration)."),
    ]


class CreateCoverRequest(_SourceClip, _Prompted):
    audio_weight: Annotated[Weight, Field(description="Closeness to the original.")] = None


class ExtractStemsRequest(_SourceClip):
    pass


class ExtractAllStemsRequest(_SourceClip):
    pass


class _Overpainting(_SourceClip, _Style):
    audio_weight: Annotated[Weight, Field(description="How much source audio to keep.")] = None
    overpainting_start_s: Annotated[Seconds, Field(description="Range start, s.")] = None
    overpainting_end_s: Annotated[Seconds, Field(description="Range end, s.")] = None

    @model_validator(mode="after")
    def _range_in_order(self) -> Self:
        _require_order(self.overpainting_start_s, self.overpainting_end_s, "overpainting_start_s", "overpainting_end_s")
        return self


class AddVocalsRequest(_Overpainting):
    lyrics: Annotated[
        str,
        Field(min_length=1, max_length=LYRICS_MAX, description="Lyrics to sing."),
    ]


class AddInstrumentalRequest(_Overpainting):
    pass


class ReplaceSectionRequest(_SourceClip, _Style):
    start_s: Annotated[float, Field(ge=0, le=3600, description="Section start, s.")]
    end_s: Annotated[
        float,
        Field(gt=0, le=3600, description="Section end, s (best 6-60 s long)."),
    ]
    section_lyrics: Annotated[
        str | None, Field(min_length=1, max_length=LYRICS_MAX, description="New lyrics for the section.")
    ] = None
    lyrics: Annotated[
        str | None,
        Field(min_length=1, max_length=LYRICS_MAX, description="Full lyrics, as context."),
    ] = None
    full_song: Annotated[bool | None, Field(description="Also return the whole re-joined song.")] = None

    @model_validator(mode="after")
    def _section_in_order(self) -> Self:
        _require_order(self.start_s, self.end_s)
        return self


class RemasterMusicRequest(_SourceClip):
    model: Annotated[ModelVersion | None, Field(description="Suno model.")] = None
    variation: Annotated[
        Literal["subtle", "normal", "high"] | None,
        Field(description="How far it may move (v5)."),
    ] = None


class MashupMusicRequest(_Prompted):
    clip_ids: Annotated[
        list[Annotated[str, Field(pattern=ID_PATTERN)]],
        Field(min_length=2, max_length=2, description="Two clip_ids to blend."),
    ]
    vocal_gender: Annotated[Literal["f", "m"] | None, Field(description="Voice (v4.5+).")] = None

    @model_validator(mode="after")
    def _two_different_clips(self) -> Self:
        if self.clip_ids[0] == self.clip_ids[1]:
            raise ValueError("clip_ids: a mashup needs two different clips")
        return self


class SampleSectionRequest(_SourceClip, _Prompted):
    start_s: Annotated[float, Field(ge=0, le=3600, description="Sample start, s.")]
    end_s: Annotated[float, Field(gt=0, le=3600, description="Sample end, s.")]
    instrumental: Annotated[bool | None, Field(description="No vocals.")] = None

    @model_validator(mode="after")
    def _sample_in_order(self) -> Self:
        _require_order(self.start_s, self.end_s)
        return self


MusicalKey = Literal[
    "Any", "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
    "Cm", "C#m", "Dm", "D#m", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "A#m", "Bm",
]  # fmt: skip


class GenerateSoundsRequest(SunoRequest):
    prompt: Annotated[str, Field(min_length=1, max_length=500, description="The sound, e.g. 'rain on a tin roof'.")]
    model: Annotated[ModelVersion | None, Field(description="Suno model.")] = None
    loop: Annotated[bool | None, Field(description="Seamless loop.")] = None
    bpm: Annotated[int | None, Field(ge=1, le=300, description="Tempo.")] = None
    key: Annotated[MusicalKey | None, Field(description="Musical key.")] = None


class GenerateMidiRequest(_SourceClip):
    pass


class UploadAudioRequest(SunoRequest):
    url: Annotated[
        str,
        Field(
            pattern=r"^https?://[^\s/$.?#][^\s]*$",
            max_length=2048,
            description="Public link to audio you may use (mp3, wav, m4a).",
        ),
    ]


class ConcatenateMusicRequest(_SourceClip):
    pass


class GetAlignedLyricsRequest(_SourceClip):
    pass


class GenerateMusicVideoRequest(_SourceClip):
    pass


class ExportWavRequest(_SourceClip):
    pass


class DetectBpmRequest(_SourceClip):
    pass


class ExtractVocalsRequest(_SourceClip):
    start_s: Annotated[Seconds, Field(description="Window start, s.")] = None
    end_s: Annotated[Seconds, Field(description="Window end, s (≤30 s after start).")] = None

    @model_validator(mode="after")
    def _window(self) -> Self:
        _require_order(self.start_s, self.end_s)
        if self.start_s is not None and self.end_s is not None and self.end_s - self.start_s > 30:
            raise ValueError("the vocal window is at most 30 seconds long")
        return self


class UpsampleTagsRequest(SunoRequest):
    tags: Annotated[
        str,
        Field(min_length=1, max_length=TAGS_MAX, description="Tags to expand, e.g. 'jazz, smooth'."),
    ]


class CreateVoicePersonaRequest(_SourceClip):
    name: Annotated[str, Field(min_length=1, max_length=80, description="Name of the persona.")]
    description: Annotated[str | None, Field(max_length=400, description="What the voice is like.")] = None
