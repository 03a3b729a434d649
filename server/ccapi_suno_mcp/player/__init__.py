"""The song player: an MCP App (`io.modelcontextprotocol/ui`) view of the action and status tools' results.

Hosts that render MCP Apps (Claude Desktop, claude.ai, ChatGPT, VS Code...) show `ui://ccapi-suno/player.html`
beside a linked tool's result: covers, titles, tags, durations, audio players, lyrics and lineage, live progress
of pending tasks, and buttons for the next steps. The view reaches the server only through the host, by calling
the same tools the model calls (so every guard applies to a button too); it never sees the CCAPI key.

The HTML is one self-contained file built from `player/` at the repository root (`npm ci && npm run build`
there) and shipped here as package data; a test rebuilds it and fails when the two differ. The tool links live
in one place, `player_link`, which the tool-registration code asks for each tool's `_meta`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib import resources
from typing import Any

from mcp.server.apps import APP_MIME_TYPE, Apps, ResourceCsp
from mcp.server.mcpserver.resources import Resource
from pydantic import Field

from ccapi_suno_mcp.catalogue import ACTIONS
from ccapi_suno_mcp.state import AppState

__all__ = [
    "PLAYER_URI",
    "SUNO_MEDIA_ORIGINS",
    "PlayerResource",
    "player_extension",
    "player_html",
    "player_link",
    "player_ui_meta",
]

PLAYER_URI = "ui://ccapi-suno/player.html"
SUNO_MEDIA_ORIGINS = ("https://cdn1.suno.ai", "https://cdn2.suno.ai")
"""Where CCAPI's results put covers and finished audio (the preview streams are not played)."""

_STATUS_TOOLS = frozenset({"suno_get_task", "suno_get_tasks", "suno_wait_for_tasks"})
_LINKED_TOOLS = _STATUS_TOOLS | {spec.tool for spec in ACTIONS}


def player_link(tool: str) -> dict[str, Any] | None:
    """The `_meta` that links `tool` to the player, or None for a tool whose results it does not show.

    Kept to the one key hosts need: tool listings count it in the model's context.
    """
    return {"ui": {"resourceUri": PLAYER_URI}} if tool in _LINKED_TOOLS else None


@functools.cache
def player_html() -> str:
    """The built player, as shipped in this package.

    Raises:
        FileNotFoundError: if the package was installed without its `player.html` (a broken build).
    """
    return resources.files(__name__).joinpath("player.html").read_text(encoding="utf-8")


def player_ui_meta(sandbox_origin: str | None) -> dict[str, Any]:
    """The resource's `_meta.ui`: a CSP naming only the media origins the player plays from.

    The player loads no script, style or font from anywhere and makes no requests of its own (it talks to the
    host by messages), so only images and audio need origins: the Suno CDN, and in sandbox mode the sandbox.
    """
    origins = [*SUNO_MEDIA_ORIGINS, *([sandbox_origin.rstrip("/")] if sandbox_origin else [])]
    csp = ResourceCsp(resource_domains=origins)
    return {"ui": {"csp": csp.model_dump(by_alias=True, exclude_none=True), "prefersBorder": False}}


class PlayerResource(Resource):
    """The player's HTML; each read names the media origins of the running server in its CSP."""

    sandbox_origin: Callable[[], str | None] = Field(exclude=True)

    async def read(self) -> str:
        # MCPServer answers a read with this resource's `meta` as it stands after `read()`, so setting it here
        # puts this run's sandbox origin (its port is chosen at start-up) into the very answer.
        self.meta = player_ui_meta(self.sandbox_origin())
        return player_html()


def player_extension(current_state: Callable[[], AppState]) -> Apps:
    """The MCP Apps extension with the player resource, for `MCPServer(extensions=[...])`.

    Registering it advertises `io.modelcontextprotocol/ui` in the server's capabilities (of the 2026-07-28 era: the
    SDK's 2025 handshake has no field for it, and hosts there go by the tools' `_meta.ui`). Clients that do not
    negotiate it get the same tool results as ever and do not see the `ui://` resource in `resources/list`.
    """
    apps = Apps()
    apps.add_resource(
        PlayerResource(
            uri=PLAYER_URI,
            name="player",
            title="Suno song player",
            description="Plays the songs of the Suno tools' results, follows pending tasks live, offers next steps.",
            mime_type=APP_MIME_TYPE,
            meta=player_ui_meta(None),
            sandbox_origin=lambda: current_state().sandbox_url,
        )
    )
    return apps
