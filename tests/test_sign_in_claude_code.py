"""The Claude Code CLI signs in to the server through the team's provider, as a person does: `claude mcp add
--transport http`, then `claude mcp login NAME --no-browser` in a terminal (the person opens the printed URL,
signs in, and pastes the address the browser lands on), then a tool call through `claude -p` (a fake model
asks for it). The CLI is pinned and installed into a temporary prefix; nothing reaches the internet."""

from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.from_thread
import anyio.to_thread
import pytest
from mcp.client.auth import OAuthClientProvider

from fake_anthropic import FakeModel, fake_anthropic
from harness import call
from oidc_provider import sign_in
from test_sign_in_processes import Deployment, connected, deployment, person

CLAUDE_CODE_VERSION = "2.1.332"  # the version .ci/claude-code.sh drives
NAME = "suno"
_ESCAPES = re.compile(rb"\x1b\][^\x07]*\x07|\x1b\[[0-9;?]*[A-Za-z]")
_AUTHORIZE = re.compile(r"(http://127\.0\.0\.1:\d+/auth\?\S+)")


@pytest.fixture(scope="module")
def claude(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    prefix = tmp_path_factory.mktemp("claude-code")
    package = f"@anthropic-ai/claude-code@{CLAUDE_CODE_VERSION}"
    command = ["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--loglevel=error", package]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=300)
    yield prefix / "node_modules" / ".bin" / "claude"
    shutil.rmtree(prefix, ignore_errors=True)


def environment(home: Path, model_origin: str) -> dict[str, str]:
    keep = {name: value for name, value in os.environ.items() if name in ("PATH", "LANG", "TMPDIR")}
    return keep | {
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": model_origin,
        "ANTHROPIC_API_KEY": "dummy",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "ENABLE_TOOL_SEARCH": "false",
        "TERM": "xterm-256color",
    }


def login_in_a_terminal(claude: Path, env: dict[str, str], cwd: Path, login: str) -> str:
    """`claude mcp login NAME --no-browser` under a pty: sign in as `login` at the printed URL and paste the
    address the provider redirects to. Returns what the terminal showed (escape sequences removed)."""
    main, secondary = os.openpty()
    process = subprocess.Popen(
        [str(claude), "mcp", "login", NAME, "--no-browser"],
        stdin=secondary, stdout=secondary, stderr=secondary, env=env, cwd=cwd, start_new_session=True,
    )  # fmt: skip
    os.close(secondary)
    shown, pasted = b"", False
    deadline = time.monotonic() + 120
    try:
        while process.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.5)
            if ready:
                try:
                    shown += os.read(main, 65536)
                except OSError:  # the terminal closed: the command ended
                    break
            text = _ESCAPES.sub(b"", shown).decode(errors="replace")
            found = _AUTHORIZE.search(text)
            if found and not pasted and "paste the redirect URL" in text:
                landed = anyio.from_thread.run(sign_in, found.group(1), login)
                os.write(main, landed.encode() + b"\r")
                pasted = True
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(main)
    return _ESCAPES.sub(b"", shown).decode(errors="replace")


def run(claude: Path, env: dict[str, str], cwd: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(claude), *arguments], env=env, cwd=cwd, capture_output=True, text=True, timeout=180, check=False
    )


@pytest.mark.anyio
async def test_claude_code_signs_in_with_mcp_login_and_calls_a_tool_as_that_person(
    tmp_path: Path, claude: Path
) -> None:
    home, project = tmp_path / "home", tmp_path / "project"
    home.mkdir()
    project.mkdir()
    model = FakeModel(f"mcp__{NAME}__suno_generate_music", {"description": "a song made from Claude Code"})
    with anyio.fail_after(300):
        async with deployment(tmp_path / "server") as site:
            with fake_anthropic(model) as model_origin:
                env = environment(home, model_origin)
                added = await anyio.to_thread.run_sync(
                    lambda: run(claude, env, project, "mcp", "add", "--transport", "http", NAME, site.resource)
                )
                shown = await anyio.to_thread.run_sync(lambda: login_in_a_terminal(claude, env, project, "alice"))
                got = await anyio.to_thread.run_sync(lambda: run(claude, env, project, "mcp", "get", NAME))
                prompt = ["-p", "Make a song.", "--allowedTools", f"mcp__{NAME}__*", "--output-format", "text"]
                asked = await anyio.to_thread.run_sync(lambda: run(claude, env, project, *prompt))
                alices, bobs = await tasks_of(site, person(site, "alice")), await tasks_of(site, person(site, "bob"))
                log = site.replica.log
    assert added.returncode == 0, added.stderr
    assert f'Authenticated with "{NAME}"' in shown, shown
    assert "✔ Connected" in got.stdout, got.stdout + got.stderr
    assert asked.returncode == 0, asked.stdout + asked.stderr
    results = model.tool_results()
    assert len(results) == 1 and "task_" in results[0], results
    task_id = re.search(r"task_[A-Za-z0-9]{16,}", results[0])
    assert task_id is not None and alices == [task_id.group(0)]
    assert bobs == []
    assert "signed in: alice (test)" in log


async def tasks_of(site: Deployment, auth: OAuthClientProvider) -> list[str]:
    async with connected(site, auth) as client:
        return [task["task_id"] for task in (await call(client, "suno_list_tasks", {}))["tasks"]]
