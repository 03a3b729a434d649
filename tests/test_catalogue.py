"""The action catalogue, its overrides and the request models' limits."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ccapi_suno_mcp.catalogue import ACTIONS, Catalogue, CatalogueError, load_overrides
from ccapi_suno_mcp.ccapi import requests as rq
from ccapi_suno_mcp.settings import Settings, SettingsError

CLIP = "07c958f3-8293-4a11-96d3-240dd62bbb31"


def test_the_catalogue_holds_the_22_actions_and_a_disabled_persona() -> None:
    enabled = [spec.tool for spec in ACTIONS if spec.enabled]
    assert len(enabled) == 22
    assert len(set(enabled)) == 22
    assert [spec.tool for spec in ACTIONS if not spec.enabled] == ["suno_create_voice_persona"]


def test_only_upsample_tags_is_marked_confirmed() -> None:
    assert [spec.action for spec in ACTIONS if spec.confirmed] == ["UPSAMPLE_TAGS"]


def test_every_description_says_cost_time_and_next_step() -> None:
    for spec in ACTIONS:
        if spec.enabled:
            text = spec.description()
            assert text.startswith(spec.summary)  # what it does, so when to use it
            assert "Billable" in text  # what it costs
            assert f", {spec.seconds}." in text  # how long it takes
            assert text.endswith(f"Next: {spec.next_step}.")  # what to call next
            assert ".." not in text


def test_a_token_override_by_tool_name_or_token_changes_the_route() -> None:
    catalogue = Catalogue().apply_overrides({"suno_extend_music": "extend_music", "WAV": "GET_WAV"})
    assert catalogue.spec("suno_extend_music").action == "EXTEND_MUSIC"
    assert catalogue.spec("suno_export_wav").action == "GET_WAV"
    assert not catalogue.spec("suno_export_wav").confirmed


def test_an_object_override_renames_fields_and_adds_constants() -> None:
    catalogue = Catalogue().apply_overrides(
        {"EXTEND": {"action": "MUSIC", "fields": {"clip_id": "audio_id"}, "body": {"task": "extend"}},
         "models": {"v5": "sonic-v5"}}
    )  # fmt: skip
    spec = catalogue.spec("suno_extend_music")
    body = catalogue.build_body(spec, rq.ExtendMusicRequest(clip_id=CLIP, continue_at=10, model="v5"))
    assert spec.action == "MUSIC"
    assert body == {"task": "extend", "audio_id": CLIP, "continue_at": 10.0, "mv": "sonic-v5"}


@pytest.mark.parametrize(
    "overrides",
    [
        {"NOPE": "X"},
        {"suno_export_wav": "has space"},
        {"suno_export_wav": {"fields": {"not_a_field": "x"}}},
        {"suno_export_wav": {"surprise": 1}},
        {"models": ["v5"]},
    ],
)
def test_bad_overrides_are_refused_with_the_reason(overrides: dict[str, object]) -> None:
    with pytest.raises(CatalogueError, match="CCAPI_SUNO_ACTIONS"):
        Catalogue().apply_overrides(overrides)


def test_overrides_load_from_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "actions.json"
    path.write_text('{"STEMS": "STEMS_BASIC"}', encoding="utf-8")
    assert load_overrides(str(path)) == {"STEMS": "STEMS_BASIC"}


def test_extra_fields_pass_through_but_cannot_shadow_named_ones() -> None:
    catalogue = Catalogue()
    spec = catalogue.spec("suno_generate_music")
    request = rq.GenerateMusicRequest(description="x", extra={"auto_lyrics": True})
    assert catalogue.build_body(spec, request)["auto_lyrics"] is True
    with pytest.raises(CatalogueError, match=r"extra\.gpt_description_prompt"):
        catalogue.build_body(spec, rq.GenerateMusicRequest(description="x", extra={"gpt_description_prompt": "y"}))


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({}, "say what to make"),
        ({"description": "a", "lyrics": "b"}, "not both"),
        ({"lyrics": "x" * 3001, "model": "v4"}, "at most 3000"),
        ({"description": "x", "tags": "t" * 201, "model": "v3.5"}, "at most 200"),
        ({"description": "x", "style_weight": 1.5}, "less than or equal to 1"),
        ({"description": "x" * 401}, "at most 400"),
        ({"description": "x", "surprise": 1}, "Extra inputs are not permitted"),
    ],
)
def test_generate_music_refuses_bad_input_with_the_field_and_limit(arguments: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        rq.GenerateMusicRequest.model_validate(arguments)


def test_longer_lyrics_are_fine_on_newer_models() -> None:
    assert rq.GenerateMusicRequest(lyrics="x" * 4000, model="v5").lyrics == "x" * 4000


@pytest.mark.parametrize(
    ("model", "arguments", "fragment"),
    [
        (rq.MashupMusicRequest, {"clip_ids": [CLIP], "description": "x"}, "at least 2"),
        (rq.MashupMusicRequest, {"clip_ids": [CLIP, CLIP], "description": "x"}, "two different clips"),
        (rq.ExtendMusicRequest, {"clip_id": CLIP, "continue_at": -1}, "greater than or equal to 0"),
        (rq.ExtendMusicRequest, {"clip_id": "../etc", "continue_at": 1}, "should match pattern"),
        (rq.ReplaceSectionRequest, {"clip_id": CLIP, "start_s": 20, "end_s": 10}, "greater than start_s"),
        (rq.ExtractVocalsRequest, {"clip_id": CLIP, "start_s": 0, "end_s": 45}, "at most 30 seconds"),
        (rq.GenerateSoundsRequest, {"prompt": "x", "bpm": 301}, "less than or equal to 300"),
        (rq.UploadAudioRequest, {"url": "file:///etc/passwd"}, "should match pattern"),
        (rq.ExtendMusicRequest, {"clip_id": CLIP, "continue_at": 1, "task_id": "nope"}, "should match pattern"),
    ],
)
def test_follow_up_requests_refuse_bad_input(
    model: type[rq.SunoRequest], arguments: dict[str, object], fragment: str
) -> None:
    with pytest.raises(ValidationError, match=fragment):
        model.model_validate(arguments)


def test_settings_read_the_documented_environment(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "CCAPI_API_KEY": " sk-abc ",
            "CCAPI_BASE_URL": "https://proxy.test/",
            "CCAPI_SUNO_HOME": str(tmp_path),
            "CCAPI_SUNO_TOOLSETS": "create, export",
            "CCAPI_SUNO_ACTIONS": '{"WAV": "GET_WAV"}',
        }
    )
    assert settings.api_key == "sk-abc"
    assert settings.base_url == "https://proxy.test"
    assert settings.ledger_path == tmp_path / "ledger.sqlite3"
    assert settings.downloads == tmp_path / "downloads"
    assert settings.toolsets == {"create", "export", "status"}
    assert settings.catalogue().spec("suno_export_wav").action == "GET_WAV"
    assert "sk-abc" not in repr(settings)


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"CCAPI_SUNO_TOOLSETS": "create,nope"}, "CCAPI_SUNO_TOOLSETS"),
        ({"CCAPI_SUNO_ACTIONS": "{not json"}, "CCAPI_SUNO_ACTIONS"),
        ({"CCAPI_SUNO_ACTIONS": '{"NOPE": "X"}'}, "CCAPI_SUNO_ACTIONS"),
        ({"CCAPI_BASE_URL": "ftp://x"}, "CCAPI_BASE_URL"),
    ],
)
def test_unusable_settings_name_the_variable(environ: dict[str, str], variable: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({"CCAPI_SUNO_HOME": str(tmp_path), **environ})
