"""The streamable HTTP transport (bearer token, DNS-rebinding protection) and the doctor command."""

from __future__ import annotations

import io
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from ccapi_suno_mcp.app import create_server
from ccapi_suno_mcp.cli import main
from ccapi_suno_mcp.doctor import run_doctor
from ccapi_suno_mcp.http import build_http_app
from ccapi_suno_mcp.sandbox import ManualClock, Sandbox, serve_asgi, serve_sandbox
from ccapi_suno_mcp.settings import Settings
from harness import KEY, MODES, Mode
from processes import INITIALIZE, MCP_HEADERS

TOKEN = "http-token-for-tests-0123456789"


@asynccontextmanager
async def http_server(home: Path) -> AsyncGenerator[tuple[str, Sandbox]]:
    """The MCP server on an ephemeral loopback port, wired to a sandbox; yields its /mcp URL."""
    sandbox = Sandbox(clock=ManualClock())
    async with serve_sandbox(sandbox) as origin:
        server = create_server(Settings(api_key=KEY, base_url=origin, home=home), poll_interval=0.02)
        app = build_http_app(server, host="127.0.0.1", port=0, token=TOKEN)
        async with serve_asgi(app, lifespan="on") as mcp_origin:
            yield f"{mcp_origin}/mcp", sandbox


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_an_authorized_client_generates_over_http_in_both_eras(tmp_path: Path, mode: Mode) -> None:
    async with (
        http_server(tmp_path) as (url, sandbox),
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        tools = (await client.list_tools()).tools
        result = await client.call_tool("suno_generate_music", {"description": "a song over http"})
        accepted = sandbox.stats.accepted_submits
    assert len(tools) == 29
    assert not result.is_error
    assert result.structured_content is not None and result.structured_content["task_id"].startswith("task_")
    assert accepted == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"authorization": "Bearer wrong-token"}, 401),
        ({"authorization": TOKEN}, 401),
        ({"authorization": f"Bearer {TOKEN}", "host": "evil.example:80"}, 421),
        ({"authorization": f"Bearer {TOKEN}", "origin": "http://evil.example"}, 403),
    ],
)
async def test_requests_without_the_token_or_from_a_foreign_host_are_refused(
    tmp_path: Path, headers: dict[str, str], status: int
) -> None:
    async with http_server(tmp_path) as (url, sandbox), httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(url, json=INITIALIZE, headers={**MCP_HEADERS, **headers})
        requests = sandbox.stats.requests
    assert response.status_code == status
    assert requests == 0
    if status == 401:
        reason = "missing" if not headers else "wrong"
        described = f"{reason} bearer token: send Authorization: Bearer <CCAPI_SUNO_HTTP_TOKEN>"
        assert response.json()["error_description"] == described


@pytest.mark.anyio
async def test_an_oversize_body_is_refused(tmp_path: Path) -> None:
    huge = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"padding": "x" * (5 * 1024 * 1024)}}
    async with http_server(tmp_path) as (url, _), httpx2.AsyncClient(timeout=30) as http:
        response = await http.post(url, json=huge, headers={**MCP_HEADERS, "authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 413


def test_binding_beyond_loopback_without_a_token_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CCAPI_SUNO_HOME", str(tmp_path))
    monkeypatch.delenv("CCAPI_SUNO_HTTP_TOKEN", raising=False)
    with pytest.raises(SystemExit) as exited:
        main(["--transport", "http", "--host", "0.0.0.0", "--port", "1"])
    assert exited.value.code == 2
    assert "CCAPI_SUNO_HTTP_TOKEN" in capsys.readouterr().err


async def _doctor(environ: dict[str, str]) -> tuple[int, str]:
    out = io.StringIO()
    status = await run_doctor(environ, out=out)
    return status, out.getvalue()


@pytest.mark.anyio
async def test_doctor_explains_a_missing_key_in_one_line(tmp_path: Path) -> None:
    status, text = await _doctor({"CCAPI_SUNO_HOME": str(tmp_path)})
    assert status == 1
    [line] = [line for line in text.splitlines() if line.startswith("FAIL")]
    assert "CCAPI_API_KEY is not set" in line


@pytest.mark.anyio
async def test_doctor_explains_a_wrong_key_and_never_prints_it(tmp_path: Path) -> None:
    sandbox = Sandbox(api_key="sk-the-right-one")
    async with serve_sandbox(sandbox) as origin:
        wrong: dict[str, Any] = {"CCAPI_SUNO_HOME": str(tmp_path), "CCAPI_BASE_URL": origin, "CCAPI_API_KEY": KEY}
        status, text = await _doctor(wrong)
        good_status, good_text = await _doctor({**wrong, "CCAPI_API_KEY": "sk-the-right-one"})
    assert status == 1
    [line] = [line for line in text.splitlines() if line.startswith("FAIL")]
    assert "rejected the API key" in line
    assert KEY not in text and "sk-the-right-one" not in good_text
    assert good_status == 0, good_text
    assert "22/22 catalogue tokens" in good_text


@pytest.mark.anyio
async def test_the_bearer_scheme_is_case_insensitive(tmp_path: Path) -> None:
    async with http_server(tmp_path) as (url, _), httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(url, json=INITIALIZE, headers={**MCP_HEADERS, "authorization": f"bearer {TOKEN}"})
    assert response.status_code == 200


@pytest.mark.anyio
async def test_doctor_reports_a_corrupt_ledger_instead_of_crashing(tmp_path: Path) -> None:
    (tmp_path / "ledger.sqlite3").write_bytes(b"this is not a database" * 100)
    status, text = await _doctor({"CCAPI_SUNO_HOME": str(tmp_path)})
    assert status == 1
    assert any(line.startswith("FAIL") and "ledger" in line for line in text.splitlines())


@pytest.mark.anyio
async def test_fifty_concurrent_generations_over_http_make_fifty_distinct_tasks(tmp_path: Path) -> None:
    task_ids: list[str] = []
    async with (
        http_server(tmp_path) as (url, sandbox),
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):

        async def generate(number: int) -> None:
            result = await client.call_tool("suno_generate_music", {"description": f"song number {number}"})
            assert result.structured_content is not None, result
            task_ids.append(result.structured_content["task_id"])

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tasks:
                for number in range(50):
                    tasks.start_soon(generate, number)
        listed = await client.call_tool("suno_list_tasks", {"limit": 100})
        accepted = sandbox.stats.accepted_submits
    assert len(set(task_ids)) == 50
    assert accepted == 50
    assert listed.structured_content is not None
    assert {task["task_id"] for task in listed.structured_content["tasks"]} == set(task_ids)


def test_the_generated_http_token_is_private_reused_and_never_written_through_a_link(tmp_path: Path) -> None:
    from ccapi_suno_mcp.cli import _generated_token  # pyright: ignore[reportPrivateUsage]

    first = _generated_token(tmp_path)
    path = tmp_path / "http-token"
    assert path.stat().st_mode & 0o777 == 0o600
    assert _generated_token(tmp_path) == first
    path.unlink()
    outside = tmp_path / "outside"
    outside.write_text("keep me", encoding="utf-8")
    path.symlink_to(outside)
    replaced = _generated_token(tmp_path)
    assert outside.read_text(encoding="utf-8") == "keep me"
    assert not path.is_symlink() and path.read_text(encoding="utf-8").strip() == replaced
