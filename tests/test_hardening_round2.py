"""The second round of hardening, in process: hostile bodies, a broken CCAPI, a malformed key."""

from __future__ import annotations

import io
from pathlib import Path

import httpx2
import pytest
from mcp.types import INVALID_PARAMS, PARSE_ERROR, jsonrpc_message_adapter
from pydantic import ValidationError

from ccapi_suno_mcp import ccapi
from ccapi_suno_mcp.doctor import run_doctor
from ccapi_suno_mcp.sandbox import Sandbox, serve_sandbox
from ccapi_suno_mcp.settings import Settings
from ccapi_suno_mcp.stdio import answer_for_unreadable

KEY_WITH_ZWSP = "sk-pastedkey0123456789\u200b"


@pytest.mark.parametrize(
    ("key", "named"),
    [
        (KEY_WITH_ZWSP, "the invisible character U+200B (ZERO WIDTH SPACE) at position 23 of 23"),
        ("sk-abc\u00e9def", "the character U+00E9 (LATIN SMALL LETTER E WITH ACUTE) at position 7"),
        ("sk-abc def", "the invisible character U+0020 (SPACE) at position 7"),
        ("sk-abc\x07", "the invisible character U+0007 at position 7"),
    ],
)
def test_a_key_with_a_character_no_key_has_is_refused_at_start_up_naming_the_character(key: str, named: str) -> None:
    settings = Settings.from_env({"CCAPI_API_KEY": key})
    assert settings.api_key is None and settings.api_key_problem is not None
    assert settings.api_key_problem.startswith(f"CCAPI_API_KEY holds {named}")
    assert "pastedkey" not in settings.api_key_problem and "abc" not in settings.api_key_problem


@pytest.mark.anyio
async def test_the_client_never_sends_a_key_no_http_header_can_carry() -> None:
    sent: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        sent.append(request)
        return httpx2.Response(200, json={"code": "success", "data": "task_x"})

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler)) as http:
        client = ccapi.SunoClient(api_key=KEY_WITH_ZWSP, base_url="https://ccapi.test", http_client=http)
        with pytest.raises(ccapi.MalformedAPIKeyError, match=r"U\+200B"):
            await client.submit("MUSIC", {"gpt_description_prompt": "rain"})
    assert sent == []


@pytest.mark.anyio
async def test_doctor_names_the_bad_character_of_the_key_and_asks_ccapi_nothing(tmp_path: Path) -> None:
    sandbox = Sandbox()
    out = io.StringIO()
    async with serve_sandbox(sandbox) as origin:
        environ = {"CCAPI_API_KEY": KEY_WITH_ZWSP, "CCAPI_BASE_URL": origin, "CCAPI_SUNO_HOME": str(tmp_path)}
        status = await run_doctor(environ, out=out)
    [line] = [line for line in out.getvalue().splitlines() if line.startswith("FAIL")]
    assert status == 1 and "U+200B (ZERO WIDTH SPACE)" in line and "pastedkey" not in line
    assert sandbox.stats.requests == 0


def _unreadable(line: str) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        jsonrpc_message_adapter.validate_json(line, by_name=False)
    return caught.value


@pytest.mark.parametrize(
    ("line", "request_id"),
    [
        (
            '{"jsonrpc":"2.0","method":"tools/call","params":{"a":"} \\" [ {","b":'
            + "[" * 300
            + "]" * 300
            + '},"id":"x"}',
            "x",
        ),
        ('{"jsonrpc":"2.0","id":7,"method":"tools/call","params":' + '{"a":' * 500 + "1" + "}" * 501, 7),
        ('{"params":' + "[" * 9000 + ', "id": 9}', None),  # never closed: the id sits inside, not at the top
    ],
)
def test_a_line_nested_too_deep_is_answered_for_the_id_at_its_top_level(
    line: str, request_id: int | str | None
) -> None:
    answer = answer_for_unreadable(_unreadable(line))
    assert answer is not None
    assert answer.id == request_id
    assert answer.error.code == (INVALID_PARAMS if request_id is not None else PARSE_ERROR)
    assert "more than 200 levels deep" in answer.error.message


def test_a_notification_nested_too_deep_is_not_answered() -> None:
    line = '{"jsonrpc":"2.0","method":"notifications/progress","params":' + "[" * 300 + "]" * 300 + "}"
    assert answer_for_unreadable(_unreadable(line)) is None
