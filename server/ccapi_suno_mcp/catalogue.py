"""The action catalogue: one row per Suno action, and the one table of what is not confirmed.

Only the route shapes, the envelopes, the task record and the `UPSAMPLE_TAGS` token are
confirmed by CCAPI. Every other action token, body field name and model name below is the best
evidence of `reference/ccapi-suno-api.md` and is marked `confirmed=False`. Users override any of
them with `CCAPI_SUNO_ACTIONS` (see `apply_overrides`), so nothing about CCAPI's unknowns is
scattered through the code.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from ccapi_suno_mcp._json import json_object

if TYPE_CHECKING:
    from ccapi_suno_mcp.ccapi import requests as rq

__all__ = [
    "ACTIONS",
    "DEFAULT_MODEL_NAMES",
    "DEFAULT_WIRE_NAMES",
    "TOOLSETS",
    "ActionSpec",
    "Catalogue",
    "CatalogueError",
    "Toolset",
]

Toolset = Literal["create", "edit", "stems", "export", "status"]
TOOLSETS: tuple[Toolset, ...] = ("create", "edit", "stems", "export", "status")

# Our field name -> CCAPI body field, for every action (per-action `wire` entries win). [P]/[N]
DEFAULT_WIRE_NAMES: Mapping[str, str] = {
    "lyrics": "prompt",
    "description": "gpt_description_prompt",
    "model": "mv",
    "instrumental": "make_instrumental",
}

# Our model version -> CCAPI's `mv` value. [I]: CCAPI's naming is unknown; its agent-skill page
# names `chirp-v5`, new-api defaults to `chirp-v3-0`, the upstream uses `sonic-v5`.
DEFAULT_MODEL_NAMES: Mapping[str, str] = {
    "v3.5": "chirp-v3-5",
    "v4": "chirp-v4",
    "v4.5": "chirp-v4-5",
    "v4.5+": "chirp-v4-5-plus",
    "v5": "chirp-v5",
    "v5.5": "chirp-v5-5",
}

_CONTINUE = {"clip_id": "continue_clip_id"}


class CatalogueError(ValueError):
    """The catalogue or an override of it is not usable."""


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One Suno action: how it is exposed as a tool and how it is sent to CCAPI."""

    tool: str
    action: str
    request_model: str
    """The name of its request model in `ccapi.requests`, imported on first use (it is not needed to list tools)."""
    title: str
    summary: str
    toolset: Toolset
    produces: str
    seconds: str
    next_step: str
    upstream_credits: int | None = None
    billable: bool = True
    confirmed: bool = False
    enabled: bool = True
    wire: Mapping[str, str] = field(default_factory=lambda: dict[str, str]())
    constant_body: Mapping[str, Any] = field(default_factory=lambda: dict[str, Any]())

    @property
    def request(self) -> type[rq.SunoRequest]:
        """The request model that validates this action's arguments."""
        module = importlib.import_module("ccapi_suno_mcp.ccapi.requests")
        return cast("type[rq.SunoRequest]", getattr(module, self.request_model))

    @property
    def follows_clip(self) -> bool:
        """True when the action works on an existing clip (and so sends its parent task id)."""
        return "clip_id" in self.request.model_fields

    def wire_name(self, name: str) -> str:
        return self.wire.get(name) or DEFAULT_WIRE_NAMES.get(name, name)

    def description(self) -> str:
        """The tool description: what it does and when to use it, what it costs, how long it takes, what next.

        What every action shares (a repeat within 10 minutes returns the first task) is said once, in the
        server's instructions and in the `force` parameter.
        """
        cost = "Free" if not self.billable else "Billable"
        if self.billable and self.upstream_credits is not None:
            cost += f" (~{self.upstream_credits} credit{'s' if self.upstream_credits != 1 else ''})"
        return f"{self.summary} {cost}; {self.produces}, {self.seconds}. Next: {self.next_step}."


def _spec(tool: str, action: str, request_model: str, **kwargs: Any) -> ActionSpec:
    return ActionSpec(tool=tool, action=action, request_model=request_model, **kwargs)


_WAIT = "suno_wait_for_tasks"
_CLIPS_NEXT = _WAIT

ACTIONS: tuple[ActionSpec, ...] = (
    _spec(
        "suno_generate_music", "MUSIC", "GenerateMusicRequest", title="Generate music",
        summary="New songs from a description or your lyrics (or instrumental from tags).",
        toolset="create", produces="2 clips", seconds="1-3 min",
        next_step=_CLIPS_NEXT, upstream_credits=15,
    ),
    _spec(
        "suno_generate_lyrics", "LYRICS", "GenerateLyricsRequest", title="Generate lyrics",
        summary="Draft lyrics from a theme, no audio, to review before generating.",
        toolset="create", produces="lyrics drafts", seconds="10-30 s",
        next_step=f"{_WAIT}, then suno_generate_music", upstream_credits=1,
    ),
    _spec(
        "suno_extend_music", "EXTEND", "ExtendMusicRequest", title="Extend a song",
        summary="Continue a clip from a given second, maybe with new lyrics.",
        toolset="edit", produces="2 clips of the new part", seconds="1-3 min",
        next_step=f"{_WAIT}, suno_concatenate_music", upstream_credits=15, wire=_CONTINUE,
    ),
    _spec(
        "suno_create_cover", "COVER", "CreateCoverRequest", title="Create a cover",
        summary="Re-record a clip in another style, keeping its melody.",
        toolset="edit", produces="2 clips", seconds="1-3 min", next_step=_CLIPS_NEXT, upstream_credits=15,
        wire=_CONTINUE,
    ),
    _spec(
        "suno_extract_stems", "STEMS", "ExtractStemsRequest", title="Extract stems (vocals + instrumental)",
        summary="Split a clip into vocals and instrumental.",
        toolset="stems", produces="2 stem clips", seconds="1-2 min", next_step=f"{_WAIT}, suno_download",
        upstream_credits=15,
    ),
    _spec(
        "suno_extract_all_stems", "STEMS_FULL", "ExtractAllStemsRequest", title="Extract all stems",
        summary="Split a clip into up to 12 instrument stems.",
        toolset="stems", produces="up to 12 stem clips", seconds="2-5 min",
        next_step=f"{_WAIT}; stems suit suno_generate_midi", upstream_credits=75,
    ),
    _spec(
        "suno_add_vocals", "ADD_VOCALS", "AddVocalsRequest", title="Add vocals",
        summary="Sing lyrics over an instrumental clip.",
        toolset="edit", produces="2 clips", seconds="1-3 min", next_step=_CLIPS_NEXT, upstream_credits=15,
        wire=_CONTINUE,
    ),
    _spec(
        "suno_add_instrumental", "ADD_INSTRUMENTAL", "AddInstrumentalRequest", title="Add instrumental",
        summary="Compose a backing track under a vocal clip.",
        toolset="edit", produces="2 clips", seconds="1-3 min", next_step=_CLIPS_NEXT, upstream_credits=15,
        wire=_CONTINUE,
    ),
    _spec(
        "suno_replace_section", "REPLACE_SECTION", "ReplaceSectionRequest", title="Replace a section",
        summary="Regenerate a time range of a clip, maybe with new lyrics.",
        toolset="edit", produces="a clip", seconds="1-2 min", next_step=_CLIPS_NEXT, upstream_credits=10,
        wire={"start_s": "infill_start_s", "end_s": "infill_end_s", "section_lyrics": "infill_lyrics",
              "full_song": "auto_concat"},
    ),
    _spec(
        "suno_remaster_music", "REMASTER", "RemasterMusicRequest", title="Remaster a song",
        summary="Remaster a clip (newer model, fuller sound; best under a day old).",
        toolset="edit", produces="2 clips", seconds="1-3 min", next_step=_CLIPS_NEXT, upstream_credits=15,
        wire={**_CONTINUE, "variation": "variation_category"},
    ),
    _spec(
        "suno_mashup_music", "MASHUP", "MashupMusicRequest", title="Mash up two songs",
        summary="Blend two clips into a new song.",
        toolset="create", produces="2 clips", seconds="1-3 min", next_step=_CLIPS_NEXT, upstream_credits=10,
    ),
    _spec(
        "suno_sample_section", "SAMPLE", "SampleSectionRequest", title="Build a song from a sample",
        summary="Build a song around a short section of a clip (a riff, a hum).",
        toolset="create", produces="2 clips", seconds="1-3 min", next_step=_CLIPS_NEXT, upstream_credits=15,
        wire={"clip_id": "sample_clip_id", "start_s": "chop_sample_start_s", "end_s": "chop_sample_end_s"},
    ),
    _spec(
        "suno_generate_sounds", "SOUNDS", "GenerateSoundsRequest", title="Generate sounds",
        summary="A sound effect or loop from a description.",
        toolset="create", produces="sound clips", seconds="0.5-2 min", next_step=_CLIPS_NEXT,
    ),
    _spec(
        "suno_generate_midi", "MIDI", "GenerateMidiRequest", title="Generate MIDI",
        summary="Transcribe a clip (or a one-instrument stem) to MIDI.",
        toolset="export", produces="MIDI", seconds="0.3-2 min",
        next_step=f"{_WAIT}, suno_download",
    ),
    _spec(
        "suno_upload_audio", "UPLOAD", "UploadAudioRequest", title="Upload audio",
        summary="Bring in your own audio (a public link) to extend, cover or add to.",
        toolset="create", produces="a clip_id", seconds="10-60 s",
        next_step=_WAIT, upstream_credits=2,
    ),
    _spec(
        "suno_concatenate_music", "CONCAT", "ConcatenateMusicRequest", title="Concatenate an extension",
        summary="Join an extension clip with all before it into one song.",
        toolset="edit", produces="1 clip", seconds="10-60 s", next_step=_CLIPS_NEXT, upstream_credits=2,
        wire=_CONTINUE,
    ),
    _spec(
        "suno_get_aligned_lyrics", "ALIGNED_LYRICS", "GetAlignedLyricsRequest", title="Get time-aligned lyrics",
        summary="Time each word of a clip's lyrics (karaoke, subtitles).",
        toolset="export", produces="timings", seconds="10-60 s", next_step=_WAIT,
        upstream_credits=1,
    ),
    _spec(
        "suno_generate_music_video", "VIDEO", "GenerateMusicVideoRequest", title="Generate a music video",
        summary="A video for a clip (cover animated to the music).",
        toolset="export", produces="a video link", seconds="1-3 min",
        next_step=f"{_WAIT}, suno_download", upstream_credits=5,
    ),
    _spec(
        "suno_export_wav", "WAV", "ExportWavRequest", title="Export as WAV",
        summary="A lossless WAV of a clip.",
        toolset="export", produces="a WAV link", seconds="10-60 s", next_step=f"{_WAIT}, suno_download",
        upstream_credits=2,
    ),
    _spec(
        "suno_detect_bpm", "BPM", "DetectBpmRequest", title="Detect BPM",
        summary="A clip's tempo (average, min, max BPM).",
        toolset="export", produces="BPM", seconds="10-30 s", next_step=_WAIT,
        upstream_credits=1,
    ),
    _spec(
        "suno_extract_vocals", "VOX", "ExtractVocalsRequest", title="Extract a vocal sample",
        summary="Isolate up to 30 s of a clip's vocals (best under a day old).",
        toolset="stems", produces="vocals", seconds="10-60 s", next_step=f"{_WAIT}, suno_download",
        upstream_credits=1, wire={"start_s": "vocal_start_s", "end_s": "vocal_end_s"},
    ),
    _spec(
        "suno_upsample_tags", "UPSAMPLE_TAGS", "UpsampleTagsRequest", title="Expand style tags",
        summary="Expand a few style tags into a richer style.",
        toolset="create", produces="tags", seconds="a few s", next_step=_WAIT,
        upstream_credits=1, confirmed=True,
    ),
    _spec(
        "suno_create_voice_persona", "PERSONA", "CreateVoicePersonaRequest", title="Create a voice persona",
        summary="Unavailable at CCAPI.", toolset="create", produces="a persona id", seconds="unknown",
        next_step="not available", enabled=False,
    ),
)  # fmt: skip


class Catalogue:
    """The actions as this process uses them: the table above with the user's overrides applied."""

    def __init__(
        self, actions: Iterable[ActionSpec] = ACTIONS, model_names: Mapping[str, str] = DEFAULT_MODEL_NAMES
    ) -> None:
        self._by_tool = {spec.tool: spec for spec in actions}
        self.model_names = dict(model_names)

    def __iter__(self) -> Any:
        return iter(self._by_tool.values())

    @property
    def enabled(self) -> list[ActionSpec]:
        return [spec for spec in self._by_tool.values() if spec.enabled]

    def spec(self, tool: str) -> ActionSpec:
        return self._by_tool[tool]

    def build_body(self, spec: ActionSpec, request: rq.SunoRequest) -> dict[str, Any]:
        """The JSON body for CCAPI: our field names mapped to wire names, constants and `extra` merged.

        Raises:
            CatalogueError: if `extra` sets a field that the request already sets by its own name.
        """
        body: dict[str, Any] = dict(spec.constant_body)
        for name, value in request.payload().items():
            if name == "model":
                value = self.model_names.get(value, value)
            body[spec.wire_name(name)] = value
        for key, value in (request.extra or {}).items():
            if key in body and key not in spec.constant_body:
                raise CatalogueError(
                    f"extra.{key}: this field is already set by a named parameter; set it there instead"
                )
            body[key] = value
        return body

    def apply_overrides(self, overrides: Mapping[str, Any]) -> Catalogue:
        """A new catalogue with `CCAPI_SUNO_ACTIONS` applied.

        Keys are tool names (`suno_extend_music`) or default action tokens (`EXTEND`); a value is
        the new token, or an object with any of `action`, `fields` (our name -> wire name),
        `body` (constant fields, e.g. {"task": "extend"}) and `enabled`. The key `models` maps
        model versions to `mv` values.

        Raises:
            CatalogueError: for an unknown key or a value of the wrong shape.
        """
        by_token = {spec.action: spec.tool for spec in self._by_tool.values()}
        specs = dict(self._by_tool)
        model_names = dict(self.model_names)
        for key, value in overrides.items():
            if key == "models":
                names = json_object(value)
                if names is None or not all(isinstance(v, str) for v in names.values()):
                    raise CatalogueError('CCAPI_SUNO_ACTIONS "models" must map versions to names, e.g. {"v5": "x"}')
                model_names.update({k: str(v) for k, v in names.items()})
                continue
            tool = key if key in specs else by_token.get(key.upper())
            if tool is None:
                raise CatalogueError(f"CCAPI_SUNO_ACTIONS: unknown action {key!r} (use a tool name or an action token)")
            specs[tool] = _override(specs[tool], value)
        return Catalogue(specs.values(), model_names)


def _override(spec: ActionSpec, value: Any) -> ActionSpec:
    if isinstance(value, str):
        return replace(spec, action=_token(value), confirmed=False)
    fields = json_object(value)
    if fields is None:
        raise CatalogueError(f"CCAPI_SUNO_ACTIONS[{spec.tool}]: expected a token or an object")
    unknown = set(fields) - {"action", "fields", "body", "enabled"}
    if unknown:
        raise CatalogueError(f"CCAPI_SUNO_ACTIONS[{spec.tool}]: unknown keys {sorted(unknown)}")
    updated = spec
    if "action" in fields:
        updated = replace(updated, action=_token(fields["action"]), confirmed=False)
    if "fields" in fields:
        renames = json_object(fields["fields"])
        if renames is None or not all(isinstance(v, str) for v in renames.values()):
            raise CatalogueError(f"CCAPI_SUNO_ACTIONS[{spec.tool}].fields must map field names to wire names")
        known = set(spec.request.model_fields) - {"extra"}
        bad = [name for name in renames if name not in known]
        if bad:
            raise CatalogueError(f"CCAPI_SUNO_ACTIONS[{spec.tool}].fields: {bad} are not fields of this action")
        updated = replace(updated, wire={**spec.wire, **{k: str(v) for k, v in renames.items()}})
    if "body" in fields:
        constants = json_object(fields["body"])
        if constants is None:
            raise CatalogueError(f"CCAPI_SUNO_ACTIONS[{spec.tool}].body must be an object")
        updated = replace(updated, constant_body=constants)
    if "enabled" in fields:
        updated = replace(updated, enabled=bool(fields["enabled"]))
    return updated


def _token(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or not value.replace("_", "").isalnum():
        raise CatalogueError(f"CCAPI_SUNO_ACTIONS: {value!r} is not an action token (letters, digits, _)")
    return value.strip().upper()


def load_overrides(text: str) -> dict[str, Any]:
    """Read `CCAPI_SUNO_ACTIONS`: a JSON object, or the path of a file holding one.

    Raises:
        CatalogueError: if it is neither.
    """
    source = text.strip()
    if not source.startswith("{"):
        path = Path(source).expanduser()
        try:
            source = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CatalogueError(f"CCAPI_SUNO_ACTIONS: cannot read {path}: {exc.strerror}") from exc
    try:
        loaded = json.loads(source)
    except ValueError as exc:
        raise CatalogueError(f"CCAPI_SUNO_ACTIONS is not valid JSON: {exc}") from exc
    overrides = json_object(loaded)
    if overrides is None:
        raise CatalogueError("CCAPI_SUNO_ACTIONS must be a JSON object")
    return overrides
