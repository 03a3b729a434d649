"""The player in a real browser, as a Claude Desktop user would meet it.

Headless Chromium opens a host page built on ext-apps' own host side (AppBridge, double-iframe sandbox),
connected over streamable HTTP to the real server process in `--sandbox` mode. Screenshots of a pending and a
finished player are saved into `build/player-screenshots/` (README's picture is one of them).
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mutagen.mp3 import MP3
from playwright.async_api import Frame, Page, expect

from ccapi_suno_mcp.app import SANDBOX_API_KEY
from player_build import REPO, build_player
from player_host import BrowserLog, chromium, host_bridge, sandbox_server, until, view_frame

SCREENSHOTS = REPO / "build" / "player-screenshots"
SONG = {"description": "a short indie-pop song about rain on the window", "tags": "indie pop, dreamy"}

# Records every progress value the player's card for a task shows, from the moment it is installed.
# What has the keyboard focus in the view: a control's text, or its tag.
FOCUSED = """(e => e === document.body || e.tagName === "AUDIO" ? e.tagName : e.textContent.trim())(
  document.activeElement
)"""

RECORD_PROGRESS = """(taskId) => {
  window.progressSeen = [];
  const note = () => {
    const card = document.querySelector(`article[data-task-id="${taskId}"]`);
    const value = card && card.dataset.progress;
    if (value && window.progressSeen[window.progressSeen.length - 1] !== Number(value)) {
      window.progressSeen.push(Number(value));
    }
  };
  note();
  new MutationObserver(note).observe(document.body, { subtree: true, attributes: true, childList: true });
}"""

# Starts suno_wait_for_tasks through the host without waiting for it (as the model's next call would run).
START_WAIT = """([taskId]) => {
  window.waitDone = false;
  window.waiting = window.host
    .run("suno_wait_for_tasks", { task_ids: [taskId], timeout_seconds: 30 })
    .then((shown) => { window.waitDone = true; return shown; });
}"""

# Plays the audio element and resolves once playback has really advanced (or with what went wrong).
PLAY = """(audio) => new Promise((resolve) => {
  const done = () =>
    resolve({ time: audio.currentTime, duration: audio.duration, error: audio.error && audio.error.code });
  const timer = setTimeout(done, 15000);
  audio.addEventListener("timeupdate", () => {
    if (audio.currentTime > 0.3) { clearTimeout(timer); audio.pause(); done(); }
  });
  audio.addEventListener("error", () => { clearTimeout(timer); done(); });
  audio.play().catch(() => { clearTimeout(timer); done(); });
})"""


@asynccontextmanager
async def host_page(tmp_path: Path) -> AsyncGenerator[tuple[Page, BrowserLog, str]]:
    """The test host in Chromium, ready (connected, tools listed), on a fresh `--sandbox` server; and its origin."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    host_dir = tmp_path / "host"
    build_player(tmp_path / "player.html", host_dir=host_dir)
    async with (
        sandbox_server(tmp_path / "home") as mcp_url,
        host_bridge(host_dir, mcp_url) as origin,
        chromium(tmp_path / "profile") as (page, log),
    ):
        await page.goto(f"{origin}/host.html")
        await page.wait_for_function("window.host && (window.host.ready || window.host.error)", timeout=30_000)
        assert await page.evaluate("window.host.error") == ""
        yield page, log, origin


async def call(page: Page, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A tool call from the host page's MCP client (what the model does); returns the structured content."""
    result = await page.evaluate("([tool, args]) => window.host.callTool(tool, args)", [tool, arguments])
    assert not result.get("isError"), result
    return result["structuredContent"]


async def run(page: Page, tool: str, arguments: dict[str, Any], width: int = 640) -> tuple[str, dict[str, Any]]:
    """Call a linked tool through the host, which shows the player; returns the view's id and the result."""
    shown = await page.evaluate("([t, a, w]) => window.host.run(t, a, w)", [tool, arguments, width])
    return shown["view"], shown["result"].get("structuredContent", {})


async def settled(page: Page, view_id: str, frame: Frame) -> None:
    """Wait until the host's iframe has grown to the view's content (size-changed notifications)."""

    async def fits() -> bool:
        content = await frame.evaluate("document.documentElement.scrollHeight")
        return abs(await page.locator(f"#{view_id}").evaluate("e => e.clientHeight") - content) <= 2

    await until(fits, seconds=10, what="the view's iframe to fit its content")


@pytest.mark.anyio
async def test_a_generation_shows_a_live_player_that_ends_with_two_playable_clips(tmp_path: Path) -> None:
    async with host_page(tmp_path) as (page, log, origin):
        view, submitted = await run(page, "suno_generate_music", SONG)
        task_id = submitted["task_id"]
        player = await view_frame(page, view)
        await player.evaluate(RECORD_PROGRESS, task_id)
        card = player.locator(f'article[data-task-id="{task_id}"]')
        await expect(card.locator(".derived")).to_have_text(f"New, from the description “{SONG['description']}”")
        # The model's next call, suno_wait_for_tasks, blocks; its own player follows the task meanwhile.
        await page.evaluate(START_WAIT, [task_id])
        waiting = page.frame_locator("#view-2").frame_locator("iframe").locator(f'article[data-task-id="{task_id}"]')
        await expect(waiting).to_have_attribute("data-status", "IN_PROGRESS", timeout=20_000)
        assert not await page.evaluate("window.waitDone")

        # Pending: the player follows the task through the host until it finishes.
        await expect(card).to_have_attribute("data-status", "IN_PROGRESS", timeout=20_000)
        await expect(card.locator("progress")).to_be_visible()
        await settled(page, view, player)
        await page.locator(f"#{view}").screenshot(path=SCREENSHOTS / "player-pending.png")
        await expect(card).to_have_attribute("data-status", "SUCCESS", timeout=30_000)
        seen: list[int] = await player.evaluate("window.progressSeen")
        running = [value for value in seen if 0 < value < 100]
        assert len(running) >= 2 and running == sorted(running), seen
        assert seen[-1] == 100

        # Finished: both clips with their titles, each audio element on the clip's own audio, and it plays.
        final = await call(page, "suno_get_task", {"task_id": task_id})
        assert len(final["clips"]) == 2
        for clip in final["clips"]:
            section = card.locator(f'section.clip[data-clip-id="{clip["clip_id"]}"]')
            await expect(section.locator("h3")).to_have_text(clip["title"])
            await expect(section.locator("audio")).to_have_attribute("src", clip["audio_url"])
            await expect(section.locator(".lyrics summary")).to_have_text("Lyrics")
        first = final["clips"][0]
        audio = card.locator(f'section.clip[data-clip-id="{first["clip_id"]}"] audio')
        played = await audio.evaluate(PLAY)
        assert played["error"] is None and played["time"] > 0.3, played
        assert first["audio_url"] in log.requests
        await settled(page, view, player)
        await page.locator(f"#{view}").screenshot(path=SCREENSHOTS / "player-finished.png")

        # Buttons call the server's tools through the host: a free download, then a billable WAV export.
        section = card.locator(f'section.clip[data-clip-id="{first["clip_id"]}"]')
        await section.get_by_role("button", name="Save audio").click()
        await expect(section.locator(".feedback")).to_contain_text("Saved to", timeout=20_000)
        saved, sidecar = sorted((tmp_path / "home" / "downloads").iterdir(), key=lambda path: path.suffix != ".mp3")
        assert (saved.suffix, sidecar.name) == (".mp3", f"{saved.stem}.json")
        song: Any = MP3(saved)  # what played is this very file, tagged (the sandbox's clips are short)
        assert abs(played["duration"] - song.info.length) < 0.05, played
        await expect(section.locator(".feedback")).to_contain_text(f"Saved to {saved}")
        await expect(section.locator(".feedback")).to_contain_text(f"with {sidecar.name} beside it")
        await section.get_by_role("button", name="Save release").click()
        await expect(section.locator(".feedback")).to_contain_text("Not made yet: synced lyrics", timeout=20_000)
        [folder] = [path for path in (tmp_path / "home" / "downloads").iterdir() if path.is_dir()]
        await expect(section.locator(".feedback")).to_contain_text(f"Saved 4 files to {folder}.")
        assert sorted(path.suffix for path in folder.iterdir()) == [".json", ".mp3", ".png", ".txt"]
        export = section.locator("button.billable").first
        await expect(export).to_have_text("Export WAV · billable")
        await export.click()
        await expect(export).to_have_text("Confirm export wav: costs credits")
        assert (await call(page, "suno_list_tasks", {"action": "suno_export_wav"}))["tasks"] == []
        await export.click()
        await expect(section.locator(".feedback")).to_contain_text("following it below", timeout=20_000)
        [wav] = (await call(page, "suno_list_tasks", {"action": "suno_export_wav"}))["tasks"]
        assert wav["parent_clip_id"] == first["clip_id"]
        wav_card = player.locator(f'article[data-task-id="{wav["task_id"]}"]')
        await expect(wav_card.locator(".derived")).to_have_text(
            f"WAV export of “{first['title']}” ({first['clip_id']})"
        )
        await expect(wav_card).to_have_attribute("data-status", "SUCCESS", timeout=30_000)
        await expect(wav_card.get_by_role("button", name="Save WAV")).to_be_visible()

        # The wait has returned meanwhile, and its player shows the same two songs.
        shown = await page.evaluate("window.waiting")
        assert shown["view"] == "view-2" and shown["result"]["structuredContent"]["all_done"], shown
        await expect(waiting.locator("section.clip h3")).to_have_text([clip["title"] for clip in final["clips"]])
        traffic: list[str] = await page.evaluate("window.host.traffic()")

    sandbox_origin = f"http://127.0.0.1:{(tmp_path / 'home' / 'sandbox-port').read_text(encoding='utf-8')}"
    sandbox_proxy = origin.replace("127.0.0.1", "localhost")
    assert log.origins() <= {origin, sandbox_proxy, sandbox_origin}, log.origins()  # nothing from outside
    assert not [line for line in log.console if "Content Security Policy" in line], log.console
    assert log.errors == []
    assert traffic and not [message for message in traffic if SANDBOX_API_KEY in message]
    asked = {message["params"]["name"] for message in map(json.loads, traffic) if message.get("method") == "tools/call"}
    assert asked == {"suno_get_tasks", "suno_download", "suno_export_wav"}  # the view's own calls, via the host


@pytest.mark.anyio
async def test_the_player_follows_the_hosts_theme_and_styles_and_works_by_keyboard_at_narrow_widths(
    tmp_path: Path,
) -> None:
    async with host_page(tmp_path) as (page, log, _origin):
        task_id = (await call(page, "suno_generate_music", SONG))["task_id"]
        done = await call(page, "suno_wait_for_tasks", {"task_ids": [task_id], "timeout_seconds": 30})
        assert done["all_done"], done
        view, _ = await run(page, "suno_get_task", {"task_id": task_id})
        player = await view_frame(page, view)
        await expect(player.locator("section.clip")).to_have_count(2)
        root, body = player.locator("html"), player.locator("body")

        # The host said dark, with its own colours; then it switches to light.
        await expect(root).to_have_attribute("data-theme", "dark")
        await expect(body).to_have_css("background-color", "rgb(20, 22, 30)")
        await expect(body).to_have_css("color", "rgb(236, 238, 245)")
        await page.evaluate("window.host.setTheme('light')")
        await expect(root).to_have_attribute("data-theme", "light")
        await expect(body).to_have_css("background-color", "rgb(250, 250, 245)")
        await expect(player.locator("article.task")).to_have_css("background-color", "rgb(238, 240, 232)")

        # Keyboard: Tab reaches the audio, the lyrics and the buttons; Enter unfolds the lyrics.
        reached: list[str] = []
        await player.locator("h2").first.click()  # as a user would: the view's frame gets the keyboard
        await player.locator("audio").first.focus()
        for _ in range(40):
            reached.append(await player.evaluate(FOCUSED))
            await page.keyboard.press("Tab")
        assert reached[0] == "AUDIO" and "Lyrics" in reached and "Save audio" in reached, ", ".join(reached)
        assert "Export WAV · billable" in reached, reached
        lyrics = player.locator("details.lyrics").first
        await lyrics.locator("summary").focus()
        await page.keyboard.press("Enter")
        await expect(lyrics).to_have_attribute("open", "")

        # Narrow: at 300 px nothing overflows sideways and the clips are still all there.
        await page.evaluate(f"window.host.setWidth('{view}', 300)")
        await until(
            lambda: player.evaluate("document.documentElement.clientWidth <= 300"), seconds=5, what="the narrow width"
        )
        overflow = await player.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, overflow
        await expect(player.locator("section.clip h3")).to_have_count(2)
        await lyrics.locator("summary").click()  # folded again, for a picture of a reasonable height
        await settled(page, view, player)
        await page.locator(f"#{view}").screenshot(path=SCREENSHOTS / "player-narrow-light.png")

        # A refused call shows the server's own explanation instead of a player.
        refused_view, _ = await run(page, "suno_generate_music", {"tags": "rock"})
        refused = await view_frame(page, refused_view)
        await expect(refused.locator("#banner")).to_contain_text("Nothing was submitted")
        await expect(refused.locator("article.task")).to_have_count(0)
    assert log.errors == []
