"""Secrets: a canary key is used everywhere and must show up nowhere.

Every tool (answered and refused), every resource and every prompt is exercised with the key `CANARY`, against
the sandbox, a sandbox that rejects the key, and a CCAPI that echoes the key back in its error messages. What
the client sees, what is logged (at DEBUG) and what is stored on disk is searched for the key; so is the
stderr of the real command.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import ResourceTemplateReference
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ccapi_suno_mcp.app import create_server
from ccapi_suno_mcp.catalogue import ACTIONS
from ccapi_suno_mcp.ccapi import _client as client_module
from ccapi_suno_mcp.sandbox import serve_asgi
from ccapi_suno_mcp.settings import Settings
from harness import Harness, running

if TYPE_CHECKING:
    from conftest import Figures

CANARY = f"sk-CANARY-{uuid.uuid4().hex}"
SECRET = CANARY.removeprefix("sk-")  # what must never appear, with or without its prefix
ACTION_TOOLS = sorted(spec.tool for spec in ACTIONS if spec.enabled)
PROMPTS = {
    "compose_song": {"topic": "rain", "style": "lofi", "instrumental": "no"},
    "lengthen_song": {"clip_id": "clip-1", "continue_at": "30", "lyrics": "more rain"},
    "remix_song": {"clip_id": "clip-1", "style": "acoustic folk"},
    "release_pack": {"clip_id": "clip-1"},
}


def action_arguments(clip: str, other: str, task: str) -> dict[str, dict[str, Any]]:
    """Valid arguments for every action tool; follow-ups name the clips' task, so they reach CCAPI even for
    clips this server has never seen."""
    source: dict[str, Any] = {"clip_id": clip, "task_id": task}
    return {
        "suno_generate_music": {"description": "a short song about rain", "tags": "indie pop"},
        "suno_generate_lyrics": {"prompt": "a song about the sea"},
        "suno_extend_music": {**source, "continue_at": 0.5},
        "suno_create_cover": {**source, "tags": "jazz"},
        "suno_extract_stems": source,
        "suno_extract_all_stems": source,
        "suno_add_vocals": {**source, "lyrics": "[Verse]\nla la la"},
        "suno_add_instrumental": source,
        "suno_replace_section": {**source, "start_s": 0.1, "end_s": 0.6},
        "suno_remaster_music": source,
        "suno_mashup_music": {"clip_ids": [clip, other], "description": "blend these two"},
        "suno_sample_section": {**source, "start_s": 0.1, "end_s": 0.5, "description": "a funk song"},
        "suno_generate_sounds": {"prompt": "rain on a tin roof"},
        "suno_generate_midi": source,
        "suno_upload_audio": {"url": "https://example.com/my-song.mp3"},
        "suno_concatenate_music": source,
        "suno_get_aligned_lyrics": source,
        "suno_generate_music_video": source,
        "suno_export_wav": source,
        "suno_detect_bpm": source,
        "suno_extract_vocals": {**source, "start_s": 0.0, "end_s": 0.5},
        "suno_upsample_tags": {"tags": "jazz, smooth"},
    }


class Exposure:
    """Everything a user or an onlooker could read, searched for the key."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.results: dict[str, int] = {"answered": 0, "refused": 0}
        self.tools: set[str] = set()

    def add(self, where: str, text: str) -> None:
        self.seen.append((where, text))

    def add_file(self, path: Path) -> None:
        if path.is_file():
            self.add(str(path), path.read_bytes().decode("utf-8", "replace"))

    def add_logs(self, caplog: pytest.LogCaptureFixture) -> None:
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        for record in caplog.records:
            self.add(f"log {record.name}", formatter.format(record))

    def add_home(self, home: Path) -> None:
        """Every file the server left in its home folder, the ledger's SQLite file (read as bytes) first."""
        ledger = home / "ledger.sqlite3"
        assert ledger.is_file(), "the ledger file is where refused submits store their errors"
        self.add_file(ledger)
        for path in sorted(home.rglob("*")):
            if path != ledger:
                self.add_file(path)

    def hits(self) -> list[str]:
        return [f"{where}: {text.count(SECRET)}" for where, text in self.seen if SECRET in text]

    async def call(self, client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any] | None:
        result = await client.call_tool(tool, arguments)
        self.tools.add(tool)
        self.results["refused" if result.is_error else "answered"] += 1
        self.add(f"{tool} result", result.model_dump_json())
        return result.structured_content

    async def read_everything(self, client: Client, task_id: str | None, clip_id: str | None) -> None:
        """Every resource, template, completion and prompt the server offers."""
        listed = await client.list_resources()
        self.add("resources/list", listed.model_dump_json())
        uris = {str(resource.uri) for resource in listed.resources}
        if task_id is not None:
            uris.add(f"suno://tasks/{task_id}")
        if clip_id is not None:
            uris.add(f"suno://clips/{clip_id}")
        for uri in sorted(uris):
            self.add(uri, (await client.read_resource(uri)).model_dump_json())
        self.add("templates", (await client.list_resource_templates()).model_dump_json())
        for template, argument in (("suno://tasks/{task_id}", "task_id"), ("suno://clips/{clip_id}", "clip_id")):
            reference = ResourceTemplateReference(type="ref/resource", uri=template)
            self.add(
                "completion", (await client.complete(reference, {"name": argument, "value": ""})).model_dump_json()
            )
        prompts = await client.list_prompts()
        assert {prompt.name for prompt in prompts.prompts} == set(PROMPTS)
        self.add("prompts/list", prompts.model_dump_json())
        for name, arguments in PROMPTS.items():
            self.add(f"prompt {name}", (await client.get_prompt(name, arguments)).model_dump_json())


async def every_tool(exposure: Exposure, client: Client, clips: list[str], task: str) -> None:
    """Call every tool the server lists, with arguments that are valid (whether CCAPI then agrees or not)."""
    for tool, arguments in action_arguments(clips[0], clips[1], task).items():
        await exposure.call(client, tool, arguments)
    clip = {"clip_id": clips[0]}
    for tool, arguments in [
        ("suno_get_task", {"task_id": task}),
        ("suno_get_tasks", {"task_ids": [task]}),
        ("suno_wait_for_tasks", {"task_ids": [task], "timeout_seconds": 1}),
        ("suno_list_tasks", {}),
        ("suno_list_tasks", {"status": "outcome_unknown"}),
        ("suno_download", clip),
        ("suno_download", {**clip, "kind": "image"}),
        ("suno_get_balance", {}),
        ("suno_get_usage", {}),
    ]:
        await exposure.call(client, tool, arguments)
    assert exposure.tools == {tool.name for tool in (await client.list_tools()).tools}


def echoing_ccapi(batch_fetch_status: int = 503) -> Starlette:
    """A CCAPI that quotes the caller's Authorization header back in every error it answers with.

    Errors come as HTTP error statuses and, for lyrics, as HTTP 200 with an error envelope. Batch fetches
    fail with `batch_fetch_status`: 503 is retried (and each retry logged), 400 is not.
    """

    async def answer(request: Request) -> Response:
        said = request.headers.get("authorization", "")
        path = request.url.path
        if path == "/suno/submit/MUSIC":  # a failure after sending: the submit's outcome is unknown
            return JSONResponse({"code": "do_request_failed", "message": f"upstream failed for {said}"}, 500)
        if path == "/suno/submit/LYRICS":  # new-api's way: HTTP 200 with an error envelope
            return JSONResponse({"code": "invalid_request", "message": f"{said} may not use this action"}, 200)
        if path.startswith("/suno/submit/"):
            return JSONResponse({"code": "invalid_request", "message": f"{said} may not use this action"}, 400)
        if path == "/suno/fetch":
            return JSONResponse(
                {"code": "do_request_failed", "message": f"fetch failed for {said}"}, batch_fetch_status
            )
        if path.startswith("/suno/fetch/"):
            return JSONResponse({"code": "task_not_exist", "message": f"no such task for {said}"}, 400)
        return JSONResponse({"error": {"message": f"invalid token {said}", "type": "new_api_error"}}, 401)

    methods = ["GET", "POST"]
    return Starlette(routes=[Route("/{path:path}", answer, methods=methods)])


@asynccontextmanager
async def echoing_server(home: Path) -> AsyncGenerator[Client]:
    async with serve_asgi(echoing_ccapi()) as origin:
        settings = Settings(api_key=CANARY, base_url=origin, home=home)
        async with Client(create_server(settings, poll_interval=0.02)) as client:
            yield client


async def a_finished_song(harness: Harness) -> tuple[str, list[str]]:
    song = await harness.call("suno_generate_music", {"description": "a quiet song", "title": "Quiet"})
    waited = await harness.finished([song["task_id"]])
    return song["task_id"], [clip["clip_id"] for clip in waited["tasks"][0]["clips"]]


def report(exposure: Exposure, figures: Figures) -> list[str]:
    hits = exposure.hits()
    figures.add("canary hits", sum(int(hit.rsplit(": ", 1)[1]) for hit in hits))
    figures.add("canary places searched", len(exposure.seen))
    return hits


@pytest.mark.anyio
async def test_the_key_shows_nowhere_when_every_tool_resource_and_prompt_succeeds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, figures: Figures
) -> None:
    caplog.set_level(logging.DEBUG)
    exposure = Exposure()
    async with running(tmp_path, api_key=CANARY) as harness:
        task_id, clips = await a_finished_song(harness)
        await every_tool(exposure, harness.client, clips, task_id)
        await exposure.read_everything(harness.client, task_id, clips[0])
        stats = harness.sandbox.stats
    figures.add_sandbox(stats)
    exposure.add_logs(caplog)
    exposure.add_home(tmp_path)
    assert exposure.results == {"answered": len(ACTION_TOOLS) + 9, "refused": 0}
    assert report(exposure, figures) == []


@pytest.mark.anyio
async def test_the_key_shows_nowhere_when_ccapi_rejects_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, figures: Figures
) -> None:
    caplog.set_level(logging.DEBUG)
    exposure = Exposure()
    async with running(tmp_path, api_key=CANARY, sandbox_key="sk-the-right-key") as harness:
        await every_tool(exposure, harness.client, ["clip-1", "clip-2"], "task_abc")
        await exposure.read_everything(harness.client, None, None)
        stats = harness.sandbox.stats
    figures.add_sandbox(stats)
    exposure.add_logs(caplog)
    exposure.add_home(tmp_path)
    assert stats.requests > len(ACTION_TOOLS)
    assert exposure.results == {"answered": 3, "refused": len(ACTION_TOOLS) + 6}  # only the offline list and usage
    assert any("rejected the API key" in text for _, text in exposure.seen)
    assert report(exposure, figures) == []


@pytest.mark.anyio
async def test_the_key_shows_nowhere_when_ccapi_echoes_it_in_its_errors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, figures: Figures
) -> None:
    monkeypatch.setattr(client_module, "INITIAL_RETRY_DELAY", 0.001)  # polls retry the 503s: quickly
    caplog.set_level(logging.DEBUG)
    exposure = Exposure()
    async with echoing_server(tmp_path) as client:
        await every_tool(exposure, client, ["clip-1", "clip-2"], "task_abc")
        await every_tool(exposure, client, ["clip-1", "clip-2"], "task_abc")  # now with duplicates in the ledger
        await exposure.read_everything(client, None, None)
    exposure.add_logs(caplog)
    exposure.add_home(tmp_path)
    assert any("outcome is unknown" in text for _, text in exposure.seen)
    assert exposure.results == {"answered": 6, "refused": 2 * (len(ACTION_TOOLS) + 6)}
    assert report(exposure, figures) == []


@pytest.mark.anyio
async def test_the_key_shows_nowhere_in_the_real_command_or_its_stderr(tmp_path: Path, figures: Figures) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("CCAPI_")}
    env |= {"CCAPI_API_KEY": CANARY, "CCAPI_SUNO_HOME": str(tmp_path / "home")}
    exposure = Exposure()
    with (tmp_path / "stderr.log").open("w") as stderr, anyio.fail_after(40):
        async with serve_asgi(echoing_ccapi(batch_fetch_status=400)) as origin:  # no retries to wait out
            command = StdioServerParameters(
                command=sys.executable,
                args=["-m", "ccapi_suno_mcp", "--log-level", "DEBUG"],
                env=env | {"CCAPI_BASE_URL": origin},
            )
            async with Client(stdio_client(command, errlog=stderr)) as client:
                for tool, arguments in [
                    ("suno_generate_music", {"description": "a short song about rain"}),
                    ("suno_generate_music", {"description": "a short song about rain"}),
                    ("suno_extend_music", {"clip_id": "clip-1", "task_id": "task_abc", "continue_at": 1}),
                    ("suno_generate_lyrics", {"prompt": "rain on a tin roof"}),
                    ("suno_get_task", {"task_id": "task_abc"}),
                    ("suno_list_tasks", {}),
                    ("suno_get_balance", {}),
                ]:
                    await exposure.call(client, tool, arguments)
                await exposure.read_everything(client, None, None)
    exposure.add_file(tmp_path / "stderr.log")
    exposure.add_home(tmp_path / "home")
    assert "DEBUG" in (tmp_path / "stderr.log").read_text()
    assert exposure.results == {"answered": 1, "refused": 6}
    assert report(exposure, figures) == []
