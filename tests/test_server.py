"""The MCP server as a client meets it, in both protocol eras, against the sandbox over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx2
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.types import ResourceTemplateReference, TextResourceContents, ToolAnnotations

from ccapi_suno_mcp.app import create_server
from ccapi_suno_mcp.catalogue import ACTIONS
from ccapi_suno_mcp.sandbox import ManualClock, Sandbox, serve_sandbox
from ccapi_suno_mcp.settings import Settings
from harness import KEY, MODES, Mode, running, text_of

ACTION_TOOLS = {spec.tool for spec in ACTIONS if spec.enabled}
STATUS_TOOLS = {
    "suno_get_task", "suno_get_tasks", "suno_wait_for_tasks", "suno_list_tasks", "suno_download", "suno_get_balance",
    "suno_get_usage",
}  # fmt: skip
SONG = {"description": "a short indie-pop song about rain", "tags": "indie pop"}


def effective_hints(annotations: ToolAnnotations) -> dict[str, bool]:
    """The hints a client reads, a hint not given taking the spec's default (the listing leaves those out)."""
    return {
        "read_only": bool(annotations.read_only_hint),
        "destructive": annotations.destructive_hint is not False,
        "idempotent": bool(annotations.idempotent_hint),
        "open_world": annotations.open_world_hint is not False,
    }


async def generate(harness: Any, **arguments: Any) -> str:
    submitted = await harness.call("suno_generate_music", {**SONG, **arguments})
    return submitted["task_id"]


async def a_finished_song(harness: Any) -> tuple[str, list[dict[str, Any]]]:
    task_id = await generate(harness)
    waited = await harness.finished([task_id])
    return task_id, waited["tasks"][0]["clips"]


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_every_tool_is_listed_with_an_output_schema_and_truthful_annotations(tmp_path: Path, mode: Mode) -> None:
    async with running(tmp_path, mode=mode) as harness:
        tools = {tool.name: tool for tool in (await harness.client.list_tools()).tools}
    assert set(tools) == ACTION_TOOLS | STATUS_TOOLS
    for name, tool in tools.items():
        assert tool.output_schema is not None, name
        assert tool.annotations is not None, name
        assert tool.description, name
        hints = effective_hints(tool.annotations)
        if name in ACTION_TOOLS:
            assert hints == {"read_only": False, "destructive": False, "idempotent": False, "open_world": True}
            assert "force" in tool.input_schema["properties"]
        elif name == "suno_download":
            assert hints == {"read_only": False, "destructive": True, "idempotent": True, "open_world": True}
        else:
            assert hints["read_only"] is True, name
            assert hints["open_world"] is (name not in ("suno_list_tasks", "suno_get_usage")), name


@pytest.mark.anyio
async def test_follow_up_tools_take_a_flat_clip_id(tmp_path: Path) -> None:
    async with running(tmp_path) as harness:
        tools = {tool.name: tool for tool in (await harness.client.list_tools()).tools}
    schema = tools["suno_extend_music"].input_schema
    assert {"clip_id", "continue_at"} <= set(schema["required"])
    assert schema["properties"]["continue_at"]["minimum"] == 0
    assert "$defs" not in schema or "request" not in schema["properties"]


@pytest.mark.anyio
async def test_toolsets_pick_which_action_tools_are_listed(tmp_path: Path) -> None:
    async with running(tmp_path, toolsets=frozenset({"export", "status"})) as harness:
        names = {tool.name for tool in (await harness.client.list_tools()).tools}
    assert names == STATUS_TOOLS | {spec.tool for spec in ACTIONS if spec.enabled and spec.toolset == "export"}


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_without_a_key_tools_list_and_a_call_explains_how_to_set_it(tmp_path: Path, mode: Mode) -> None:
    async with running(tmp_path, mode=mode, api_key=None) as harness:
        assert len((await harness.client.list_tools()).tools) == len(ACTION_TOOLS | STATUS_TOOLS)
        message = await harness.fail("suno_generate_music", SONG)
        assert harness.sandbox.stats.requests == 0
    assert "CCAPI_API_KEY" in message


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_a_song_is_generated_and_waited_for_with_progress(tmp_path: Path, mode: Mode) -> None:
    progress: list[tuple[float, str | None]] = []

    async with running(tmp_path, mode=mode) as harness:

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append((value, message))
            harness.clock.advance(1.0)  # time moves only as the client sees progress

        submitted = await harness.call("suno_generate_music", SONG)
        assert submitted["status"] == "NOT_START"
        assert submitted["reused_existing"] is False
        with anyio.fail_after(20):
            waited = await harness.call(
                "suno_wait_for_tasks",
                {"task_ids": [submitted["task_id"]], "timeout_seconds": 30},
                progress_callback=on_progress,
            )
    [task] = waited["tasks"]
    assert waited["all_done"] and not waited["timed_out"]
    assert task["status"] == "SUCCESS"
    assert len(task["clips"]) == 2
    assert all(clip["final"] and clip["audio_url"] for clip in task["clips"])
    values = [value for value, _ in progress]
    assert values == sorted(values) and values[-1] == 100.0
    assert len(values) >= 3
    assert progress[0][1] is not None and "0/1 done" in progress[0][1]


@pytest.mark.anyio
async def test_a_wait_that_times_out_returns_the_state_and_says_to_call_again(tmp_path: Path) -> None:
    async with running(tmp_path) as harness:
        task_id = await generate(harness)
        waited = await harness.call("suno_wait_for_tasks", {"task_ids": [task_id], "timeout_seconds": 1})
    assert waited["timed_out"] and not waited["all_done"]
    assert waited["tasks"][0]["status"] in {"NOT_START", "SUBMITTED", "IN_PROGRESS"}
    assert "suno_wait_for_tasks again" in waited["next_step"]


@pytest.mark.anyio
async def test_a_streaming_preview_is_never_reported_as_final(tmp_path: Path) -> None:
    async with running(tmp_path) as harness:
        task_id = await generate(harness)
        harness.clock.advance(3.0)  # past half way: the sandbox shows streaming clips
        task = await harness.call("suno_get_task", {"task_id": task_id})
    assert task["status"] == "IN_PROGRESS" and not task["done"]
    assert task["clips"], "the sandbox streams previews past half way"
    assert not any(clip["final"] for clip in task["clips"])


@pytest.mark.anyio
async def test_an_identical_submit_returns_the_first_task_unless_forced(tmp_path: Path) -> None:
    async with running(tmp_path) as harness:
        first = await harness.call("suno_generate_music", SONG)
        again = await harness.call("suno_generate_music", SONG)
        forced = await harness.call("suno_generate_music", {**SONG, "force": True})
        submits = harness.sandbox.stats.accepted_submits
    assert again["task_id"] == first["task_id"]
    assert again["reused_existing"] is True
    assert forced["task_id"] != first["task_id"]
    assert submits == 2


@pytest.mark.anyio
async def test_extend_by_clip_id_alone_sends_the_parent_task_and_records_lineage(tmp_path: Path) -> None:
    async with running(tmp_path) as harness:
        parent_id, clips = await a_finished_song(harness)
        clip_id = clips[0]["clip_id"]
        extended = await harness.call("suno_extend_music", {"clip_id": clip_id, "continue_at": 1.0})
        record = harness.sandbox.task(extended["task_id"])
        waited = await harness.finished([extended["task_id"]])
        clip_resource = await harness.client.read_resource(f"suno://clips/{waited['tasks'][0]['clips'][0]['clip_id']}")
    assert extended["parent_task_id"] == parent_id
    assert extended["parent_clip_id"] == clip_id
    assert record["action"] == "EXTEND"
    [content] = clip_resource.contents
    assert isinstance(content, TextResourceContents)
    lineage = json.loads(content.text)
    assert (lineage["parent_task_id"], lineage["parent_clip_id"]) == (parent_id, clip_id)


@pytest.mark.anyio
async def test_a_follow_up_on_an_unknown_clip_is_refused_before_any_submit(tmp_path: Path) -> None:
    async with running(tmp_path) as harness:
        message = await harness.fail("suno_export_wav", {"clip_id": "0e7f5a34-0000-4000-8000-000000000000"})
        submits = harness.sandbox.stats.submits
    assert "Unknown clip" in message and "Nothing was submitted" in message
    assert submits == 0


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("tool", "arguments", "fragment"),
    [
        ("suno_generate_music", {"description": "x" * 401}, "400"),
        ("suno_generate_music", {"description": "a", "lyrics": "b"}, "not both"),
        ("suno_generate_music", {"tags": "pop"}, "say what to make"),
        ("suno_mashup_music", {"clip_ids": ["a1"], "description": "x"}, "clip_ids"),
        ("suno_generate_sounds", {"prompt": "rain", "bpm": 0}, "bpm"),
        ("suno_replace_section", {"clip_id": "a1", "start_s": 9, "end_s": 3}, "end_s must be greater"),
    ],
)
async def test_bad_input_is_a_clear_tool_error_and_nothing_is_sent(
    tmp_path: Path, tool: str, arguments: dict[str, Any], fragment: str
) -> None:
    async with running(tmp_path) as harness:
        message = await harness.fail(tool, arguments)
        requests = harness.sandbox.stats.requests
    assert fragment in message
    assert requests == 0


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_get_task_and_get_tasks_report_status_and_missing_ids(tmp_path: Path, mode: Mode) -> None:
    async with running(tmp_path, mode=mode) as harness:
        first = await generate(harness)
        second = await generate(harness, title="Second")
        one = await harness.call("suno_get_task", {"task_id": first})
        missing_id = "task_" + "0" * 32
        many = await harness.call("suno_get_tasks", {"task_ids": [first, second, missing_id]})
        unknown = await harness.fail("suno_get_task", {"task_id": missing_id})
    assert one["task_id"] == first and one["resource_uri"] == f"suno://tasks/{first}"
    assert [task["task_id"] for task in many["tasks"]] == [first, second]
    assert many["missing"] == [missing_id]
    assert "no such task" in unknown


@pytest.mark.anyio
async def test_a_failed_task_reports_its_fail_reason(tmp_path: Path) -> None:
    async with running(tmp_path) as harness:
        task_id = await generate(harness, description="a song that will sandbox:fail")
        waited = await harness.finished([task_id])
    [task] = waited["tasks"]
    assert task["status"] == "FAILURE"
    assert task["fail_reason"]


@pytest.mark.anyio
async def test_ccapi_refusals_become_actionable_tool_errors(tmp_path: Path) -> None:
    async with running(tmp_path, sandbox_key="sk-the-right-key") as harness:
        rejected = await harness.fail("suno_generate_music", SONG)
    assert "rejected the API key" in rejected
    async with running(tmp_path / "b") as harness:
        harness.sandbox.faults.insufficient_balance = 1
        broke = await harness.fail("suno_generate_music", SONG)
        harness.sandbox.faults.rate_limited = 1
        harness.sandbox.faults.retry_after_seconds = 9
        limited = await harness.fail("suno_generate_music", {**SONG, "title": "Other"})
    assert "balance is too low" in broke
    assert "retry in 9 seconds" in limited


@pytest.mark.anyio
async def test_list_tasks_filters_and_pages_newest_first(tmp_path: Path) -> None:
    async with running(tmp_path) as harness:
        ids = [await generate(harness, title=f"Song {n}") for n in range(5)]
        lyrics = (await harness.call("suno_generate_lyrics", {"prompt": "rain"}))["task_id"]
        first = await harness.call("suno_list_tasks", {"limit": 4})
        second = await harness.call("suno_list_tasks", {"limit": 4, "cursor": first["next_cursor"]})
        only_lyrics = await harness.call("suno_list_tasks", {"action": "LYRICS"})
        by_text = await harness.call("suno_list_tasks", {"text": "Song 3"})
        pending = await harness.call("suno_list_tasks", {"status": "pending"})
    listed = [task["task_id"] for task in first["tasks"] + second["tasks"]]
    assert listed == [lyrics, *reversed(ids)]
    assert second["next_cursor"] is None
    assert [task["task_id"] for task in only_lyrics["tasks"]] == [lyrics]
    assert [task["task_id"] for task in by_text["tasks"]] == [ids[3]]
    assert len(pending["tasks"]) == 6


@pytest.mark.anyio
async def test_download_saves_a_verified_wav_inside_the_download_folder(tmp_path: Path) -> None:
    async with running(tmp_path) as harness:
        _, clips = await a_finished_song(harness)
        clip_id = clips[0]["clip_id"]
        not_yet = await harness.fail("suno_download", {"clip_id": clip_id, "kind": "wav"})
        export = await harness.call("suno_export_wav", {"clip_id": clip_id})
        await harness.finished([export["task_id"]])
        saved = await harness.call("suno_download", {"clip_id": clip_id, "kind": "wav"})
        again = await harness.fail("suno_download", {"clip_id": clip_id, "kind": "wav"})
        replaced = await harness.call("suno_download", {"clip_id": clip_id, "kind": "wav", "overwrite": True})
        audio = await harness.call("suno_download", {"clip_id": clip_id})
        clip = await harness.client.read_resource(f"suno://clips/{clip_id}")
    path = Path(saved["path"])
    assert "suno_export_wav" in not_yet
    assert path.parent == (tmp_path / "downloads").resolve()
    assert path.read_bytes()[:4] == b"RIFF" and saved["size"] == path.stat().st_size > 44
    assert "overwrite=true" in again
    assert replaced["path"] == saved["path"]
    assert Path(audio["path"]).exists() and audio["path"] != saved["path"]
    assert [entry.name for entry in (tmp_path / "downloads").iterdir() if entry.name.startswith(".")] == []
    [content] = clip.contents
    assert isinstance(content, TextResourceContents)
    assert {file["kind"] for file in json.loads(content.text)["local_files"]} == {"wav", "audio", "sidecar"}


@pytest.mark.anyio
async def test_balance_is_read_in_dollars(tmp_path: Path) -> None:
    async with running(tmp_path) as harness:
        before = await harness.call("suno_get_balance")
        await generate(harness)
        after = await harness.call("suno_get_balance")
    assert before["remaining_usd"] > after["remaining_usd"]
    assert "left" in after["note"]


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_resources_list_recent_tasks_one_by_one_and_read_them(tmp_path: Path, mode: Mode) -> None:
    async with running(tmp_path, mode=mode) as harness:
        task_id = await generate(harness, title="Rainy Day")
        listed = await harness.client.list_resources()
        recent = await harness.client.read_resource("suno://tasks/recent")
        task = await harness.client.read_resource(f"suno://tasks/{task_id}")
        templates = await harness.client.list_resource_templates()
        completed = await harness.client.complete(
            ResourceTemplateReference(type="ref/resource", uri="suno://tasks/{task_id}"),
            {"name": "task_id", "value": task_id[:8]},
        )
    uris = {str(resource.uri): resource for resource in listed.resources}
    assert "suno://tasks/recent" in uris
    assert "Rainy Day" in (uris[f"suno://tasks/{task_id}"].title or "")
    [recent_content] = recent.contents
    assert isinstance(recent_content, TextResourceContents)
    assert [item["task_id"] for item in json.loads(recent_content.text)] == [task_id]
    [task_content] = task.contents
    assert isinstance(task_content, TextResourceContents)
    assert json.loads(task_content.text)["history"][0]["status"] == "NOT_START"
    assert {str(template.uri_template) for template in templates.resource_templates} == {
        "suno://tasks/{task_id}", "suno://clips/{clip_id}",
    }  # fmt: skip
    assert completed.completion.values == [task_id]


@pytest.mark.anyio
async def test_a_2025_era_subscriber_hears_its_task_change(tmp_path: Path) -> None:
    heard: list[str] = []
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        root = getattr(message, "root", message)
        method = getattr(root, "method", None)
        if method == "notifications/resources/updated":
            heard.append(str(root.params.uri))
            changed.set()
        elif method == "notifications/resources/list_changed":
            heard.append("list_changed")

    async with running(tmp_path, mode="legacy", message_handler=on_message) as harness:
        task_id = await generate(harness)
        with pytest.warns(MCPDeprecationWarning):  # the 2025-era way, which this client still speaks
            await harness.client.subscribe_resource(f"suno://tasks/{task_id}")  # pyright: ignore[reportDeprecated] - testing the 2025 way
        harness.clock.advance(60)
        with anyio.fail_after(10):
            await changed.wait()
    assert f"suno://tasks/{task_id}" in heard
    assert "list_changed" in heard


@pytest.mark.anyio
async def test_a_2026_listener_hears_the_task_list_and_the_task_change(tmp_path: Path) -> None:
    async with running(tmp_path) as harness:
        task_id = await generate(harness)
        uri = f"suno://tasks/{task_id}"
        events: list[str] = []
        async with harness.client.listen(resources_list_changed=True, resource_subscriptions=[uri]) as stream:
            harness.clock.advance(60)
            with anyio.fail_after(10):
                async for event in stream:
                    events.append(type(event).__name__ + ":" + str(getattr(event, "uri", "")))
                    if any(item.endswith(uri) for item in events):
                        break
    assert f"ResourceUpdated:{uri}" in events


@pytest.mark.anyio
async def test_prompts_are_listed_with_arguments(tmp_path: Path) -> None:
    async with running(tmp_path) as harness:
        prompts = {prompt.name: prompt for prompt in (await harness.client.list_prompts()).prompts}
        composed = await harness.client.get_prompt("compose_song", {"topic": "rain", "style": "lofi"})
    assert set(prompts) == {"compose_song", "lengthen_song", "remix_song", "release_pack"}
    assert {argument.name for argument in prompts["compose_song"].arguments or []} == {"topic", "style", "instrumental"}
    assert "suno_generate_music" in str(composed.messages[0].content)


@pytest.mark.anyio
async def test_the_ledger_survives_a_restart_and_pending_tasks_resume(tmp_path: Path) -> None:
    from ccapi_suno_mcp.sandbox import ManualClock, Sandbox, serve_sandbox

    clock = ManualClock()
    sandbox = Sandbox(clock=clock)
    async with serve_sandbox(sandbox) as origin:
        settings = Settings(api_key=KEY, base_url=origin, home=tmp_path)
        async with Client(create_server(settings, poll_interval=0.02)) as first:
            submitted = await first.call_tool("suno_generate_music", SONG)
            assert submitted.structured_content is not None
            task_id = submitted.structured_content["task_id"]
        clock.advance(60)  # the task finishes while no server runs
        async with Client(create_server(settings, poll_interval=0.02)) as second:
            with anyio.fail_after(10):
                while True:  # the new server's watcher resumes the pending task by itself
                    listed = await second.call_tool("suno_list_tasks", {"status": "SUCCESS"})
                    assert listed.structured_content is not None, text_of(listed)
                    if listed.structured_content["tasks"]:
                        break
                    await anyio.lowlevel.checkpoint()
    assert listed.structured_content["tasks"][0]["task_id"] == task_id


@pytest.mark.anyio
async def test_two_identical_calls_at_once_are_billed_once(tmp_path: Path) -> None:
    results: list[dict[str, Any]] = []
    async with running(tmp_path) as harness:

        async def call() -> None:
            results.append(await harness.call("suno_generate_music", SONG))

        async with anyio.create_task_group() as tasks:
            for _ in range(5):
                tasks.start_soon(call)
        accepted = harness.sandbox.stats.accepted_submits
    assert accepted == 1
    assert len({result["task_id"] for result in results}) == 1
    assert sorted(result["reused_existing"] for result in results) == [False, True, True, True, True]


@pytest.mark.anyio
async def test_an_unreadable_answer_to_a_submit_is_an_unknown_outcome_not_a_rejection(tmp_path: Path) -> None:
    async with running(tmp_path) as harness:
        harness.sandbox.faults.scope = "submit"
        harness.sandbox.faults.malformed = 1
        message = await harness.fail("suno_generate_music", SONG)
        again = await harness.fail("suno_generate_music", SONG)
        unknown = await harness.call("suno_list_tasks", {"status": "outcome_unknown"})
        submits = harness.sandbox.stats.submits
    assert "may have reached CCAPI" in message
    assert "outcome is unknown" in again
    assert len(unknown["tasks"]) == 1
    assert submits == 1


@pytest.mark.anyio
async def test_a_wait_polls_ccapi_on_the_watchers_schedule_not_in_a_loop(tmp_path: Path) -> None:
    batches: list[list[str]] = []
    reported: list[float] = []

    async def record(request: httpx2.Request) -> None:
        if request.url.path == "/suno/fetch":
            batches.append(json.loads(request.content)["ids"])

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reported.append(progress)

    sandbox = Sandbox(clock=ManualClock())  # tasks never finish on their own here
    async with (
        serve_sandbox(sandbox) as origin,
        httpx2.AsyncClient(event_hooks={"request": [record]}) as http,
        Client(
            create_server(Settings(api_key=KEY, base_url=origin, home=tmp_path), http_client=http, poll_interval=3600)
        ) as client,
    ):
        # The watcher fetches every pending task, and `other` is older: any batch without it is the wait's own.
        other = (await client.call_tool("suno_generate_music", {**SONG, "title": "Other"})).structured_content
        waited_for = (await client.call_tool("suno_generate_music", SONG)).structured_content
        assert other is not None and waited_for is not None
        batches.clear()
        waited = await client.call_tool(
            "suno_wait_for_tasks",
            {"task_ids": [waited_for["task_id"]], "timeout_seconds": 1},
            progress_callback=on_progress,
        )
    assert waited.structured_content is not None and waited.structured_content["timed_out"]
    own = [batch for batch in batches if other["task_id"] not in batch]
    assert own == [[waited_for["task_id"]]]  # its first look; then it reads the ledger that the watcher keeps
    assert reported == sorted(set(reported)), "progress is only sent when it rises"


@pytest.mark.anyio
async def test_a_wait_returns_by_its_deadline_even_when_ccapi_is_slow(tmp_path: Path) -> None:
    async with running(tmp_path) as harness:
        task_id = await generate(harness)
        harness.sandbox.faults.latency_seconds = 5.0
        harness.sandbox.faults.scope = "fetch"
        with anyio.fail_after(3):
            waited = await harness.call("suno_wait_for_tasks", {"task_ids": [task_id], "timeout_seconds": 1})
        harness.sandbox.faults.latency_seconds = 0.0
    assert waited["timed_out"]
    assert [task["task_id"] for task in waited["tasks"]] == [task_id]


@pytest.mark.anyio
async def test_a_change_first_seen_by_get_task_is_notified(tmp_path: Path) -> None:
    heard = anyio.Event()
    uris: list[str] = []

    async def on_message(message: Any) -> None:
        if getattr(message, "method", None) == "notifications/resources/updated":
            uris.append(str(message.params.uri))
            heard.set()

    # The watcher polls only when woken or hourly here, so get_task is the first to see the task finish.
    async with running(tmp_path, mode="legacy", message_handler=on_message, poll_interval=3600) as harness:
        task_id = await generate(harness)
        with pytest.warns(MCPDeprecationWarning):
            await harness.client.subscribe_resource(f"suno://tasks/{task_id}")  # pyright: ignore[reportDeprecated] - the 2025 way
        harness.clock.advance(60)
        task = await harness.call("suno_get_task", {"task_id": task_id})
        with anyio.fail_after(5):
            await heard.wait()
    assert task["status"] == "SUCCESS"
    assert f"suno://tasks/{task_id}" in uris


@pytest.mark.anyio
async def test_an_identical_call_waiting_on_a_refused_one_is_told_it_was_refused(tmp_path: Path) -> None:
    messages: list[str] = []
    async with running(tmp_path) as harness:
        harness.sandbox.faults.scope = "submit"
        harness.sandbox.faults.latency_seconds = 0.3
        harness.sandbox.faults.insufficient_balance = 1

        async def call() -> None:
            messages.append(await harness.fail("suno_generate_music", SONG))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(call)
            tasks.start_soon(call)
        submits = harness.sandbox.stats.submits
    assert submits == 1
    assert any("balance is too low" in message for message in messages)
    assert any("refused by CCAPI" in message and "nothing was billed" in message for message in messages)
