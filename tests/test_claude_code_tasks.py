"""The song comes back by itself, tried as a Claude Code user would: the real Claude Code CLI (npm, pinned), in its
interactive mode under tmux, against a fake Anthropic Messages API and the server in `--sandbox` mode over stdio.

The fake model asks for a song once. Interactive Claude Code declares the MCP tasks extension, so the call is
moved to the background, and when the song is finished Claude Code starts a new model turn on its own with a
`<task-notification>` holding the result. Headless `claude -p` does not declare it and gets today's answer.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Generator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from fake_anthropic import FakeModel, fake_anthropic
from polling import eventually

NEEDS = ("node", "tmux")  # the CLI comes from npm; its interactive mode runs in a tmux pane (tests/machine.py)
CLAUDE_CODE_VERSION = "2.1.337"
"""The first version measured to background MCP tasks (`reference/mcp-tasks.md`); the test pins it."""
SERVER = "suno"
PROMPT = "make me a song about rain on a tin roof"
SONG = {"description": "a short song about rain on a tin roof", "tags": "indie pop"}

# Runs the server in sandbox mode after writing its pid to the file named by the first argument.
SANDBOX_WRAPPER = (
    "import os, runpy, sys; "
    "open(sys.argv[1], 'w').write(str(os.getpid())); "
    "sys.argv = ['ccapi-suno-mcp', '--sandbox']; "
    "runpy.run_module('ccapi_suno_mcp', run_name='__main__', alter_sys=True)"
)


@pytest.fixture(scope="module")
def claude(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pinned Claude Code CLI, installed with npm into a temporary prefix once for this module."""
    prefix = tmp_path_factory.mktemp("claude-code")
    subprocess.run(
        ["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--loglevel=error",
         f"@anthropic-ai/claude-code@{CLAUDE_CODE_VERSION}"],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    binary = prefix / "node_modules" / ".bin" / "claude"
    version = subprocess.run([str(binary), "--version"], check=True, capture_output=True, text=True, timeout=60)
    assert version.stdout.startswith(CLAUDE_CODE_VERSION), version.stdout
    return binary


@dataclass(frozen=True)
class Setup:
    """A new user's machine: an empty HOME (onboarding done, the folder trusted), a project folder, an MCP config."""

    home: Path
    project: Path
    config: Path
    server_home: Path
    server_pid: Path

    def environment(self, origin: str) -> dict[str, str]:
        """Claude Code's environment: only what it needs, the fake API, nothing sent anywhere else."""
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "TERM": "xterm-256color",
            "LANG": "C.UTF-8",
            "ANTHROPIC_BASE_URL": origin,
            "ANTHROPIC_API_KEY": "dummy",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "ENABLE_TOOL_SEARCH": "false",
            "MCP_TIMEOUT": "120000",  # a loaded machine starts the server slowly
        }

    def arguments(self) -> list[str]:
        return ["--mcp-config", str(self.config), "--strict-mcp-config", "--allowedTools", f"mcp__{SERVER}__*"]

    def connected(self) -> bool:
        """Whether Claude Code has logged its connection to the server (its per-server MCP log)."""
        logs = self.home / ".cache" / "claude-cli-nodejs"
        return any("Successfully connected" in log.read_text() for log in logs.glob(f"*/mcp-logs-{SERVER}/*.jsonl"))

    def song(self) -> tuple[str, str]:
        """The finished song's title and first audio link, as the server's ledger holds them."""
        with closing(sqlite3.connect(self.server_home / "sandbox-ledger.sqlite3")) as ledger:
            [(title, audio_url)] = ledger.execute(
                "SELECT title, audio_url FROM clips ORDER BY position LIMIT 1"
            ).fetchall()
        return title, audio_url


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    home, project, server_home = tmp_path / "home", tmp_path / "project", tmp_path / "server-home"
    for folder in (home, project, server_home):
        folder.mkdir()
    (home / ".claude.json").write_text(
        json.dumps({
            "hasCompletedOnboarding": True,
            "projects": {str(project): {"hasTrustDialogAccepted": True, "hasCompletedProjectOnboarding": True}},
            "customApiKeyResponses": {"approved": ["dummy"], "rejected": []},
        }),
        encoding="utf-8",
    )  # fmt: skip
    server_pid = tmp_path / "server.pid"
    config = tmp_path / "mcp.json"
    server = {"type": "stdio", "command": sys.executable, "args": ["-c", SANDBOX_WRAPPER, str(server_pid)],
              "env": {"CCAPI_SUNO_HOME": str(server_home)}}  # fmt: skip
    config.write_text(json.dumps({"mcpServers": {SERVER: server}}), encoding="utf-8")
    return Setup(home, project, config, server_home, server_pid)


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status  # a zombie has ended


def _stop(pid: int) -> None:
    """End a process that is not our child (tmux's, or Claude Code's): SIGTERM, then SIGKILL if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not _alive(pid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + 5
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)  # a cleanup path, outside the event loop: a bounded poll for another process's exit


def _pid_of(file: Path) -> int | None:
    try:
        return int(file.read_text().strip())
    except (OSError, ValueError):
        return None


class Tmux:
    """A tmux server of its own (its own socket), so the test ends it, and everything in it, whatever happens."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def run(self, *arguments: str) -> str:
        done = subprocess.run(["tmux", "-S", str(self.socket), *arguments], capture_output=True, text=True, timeout=30)
        return done.stdout

    def type(self, text: str) -> None:
        self.run("send-keys", "-t", "claude", "-l", text)
        self.run("send-keys", "-t", "claude", "Enter")


@contextlib.contextmanager
def interactive_claude(tmp_path: Path, setup: Setup, claude: Path, origin: str) -> Generator[Tmux]:
    """Claude Code's TUI in a 200x50 tmux pane; on the way out tmux, Claude Code and the server are ended."""
    tmux = Tmux(tmp_path / "tmux.sock")
    command = ["env", "-i", *(f"{name}={value}" for name, value in setup.environment(origin).items()),
               str(claude), *setup.arguments()]  # fmt: skip
    tmux.run("new-session", "-d", "-x", "200", "-y", "50", "-s", "claude", "-c", str(setup.project), *command)
    pane = tmux.run("display-message", "-p", "-t", "claude", "#{pane_pid}").strip()
    try:
        yield tmux
    finally:
        tmux.run("kill-server")
        for pid in (int(pane) if pane.isdigit() else None, _pid_of(setup.server_pid)):
            if pid is not None:
                _stop(pid)


@pytest.mark.anyio
async def test_in_interactive_claude_code_the_finished_song_comes_back_by_itself(
    tmp_path: Path, setup: Setup, claude: Path
) -> None:
    model = FakeModel(f"mcp__{SERVER}__suno_generate_music", SONG)
    with fake_anthropic(model) as origin, interactive_claude(tmp_path, setup, claude, origin) as tmux:
        await eventually(setup.connected, within=150)
        tmux.type(PROMPT)

        def notified() -> str | None:
            return next((text for text in model.last_user_texts() if "<task-notification>" in text), None)

        notification = await eventually(notified, within=150)
        title, audio_url = setup.song()
    assert model.tool_calls == 1
    placeholder = next(text for text in model.last_user_texts() if "started server-side task" in text)
    assert "moved to the background" in placeholder
    assert notification is not None and "<status>completed</status>" in notification
    assert f'"title":"{title}"' in notification and audio_url in notification
    assert '"all_done":true' in notification


@pytest.mark.anyio
async def test_headless_claude_code_gets_todays_synchronous_answer(tmp_path: Path, setup: Setup, claude: Path) -> None:
    model = FakeModel(f"mcp__{SERVER}__suno_generate_music", SONG)
    with fake_anthropic(model) as origin:
        try:
            with anyio.fail_after(240):
                done = await anyio.run_process(
                    [str(claude), "-p", PROMPT, *setup.arguments()],
                    env=setup.environment(origin), cwd=setup.project, check=False,
                )  # fmt: skip
        finally:
            if (pid := _pid_of(setup.server_pid)) is not None:
                _stop(pid)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    assert model.tool_calls == 1
    texts = model.last_user_texts()
    answer = next(text for text in texts if '"task_id"' in text)
    assert '"reused_existing":false' in answer and "suno_wait_for_tasks" in answer
    assert not any("<task-notification>" in text or "server-side task" in text for text in texts)
