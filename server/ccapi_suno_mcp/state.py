"""What the server's lifespan holds, and how tools, resources and prompts reach it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mcp.server.mcpserver import Context

from ccapi_suno_mcp.catalogue import Catalogue
from ccapi_suno_mcp.ccapi import CCAPIError, SunoClient
from ccapi_suno_mcp.errors import no_key_message, tool_error
from ccapi_suno_mcp.ledger import TaskLedger
from ccapi_suno_mcp.notifications import Notifier, connection_of
from ccapi_suno_mcp.settings import Settings
from ccapi_suno_mcp.spend._calendar import Calendar
from ccapi_suno_mcp.watcher import Watcher

__all__ = ["AppState", "app_state"]


@dataclass(slots=True)
class AppState:
    """The objects one server process shares: opened and closed by the lifespan."""

    settings: Settings
    catalogue: Catalogue
    client: SunoClient
    ledger: TaskLedger
    notifier: Notifier
    watcher: Watcher
    sandbox_url: str | None = None
    calendar: Calendar = field(default_factory=Calendar)
    """Local days, weeks and months for spend and budgets."""

    def error(self, error: CCAPIError, subject: str = "") -> Exception:
        """The tool error for a CCAPI failure, with the key redacted."""
        return tool_error(
            error,
            base_url=self.client.base_url,
            api_key=self.settings.api_key,
            subject=subject,
            no_key=no_key_message(self.settings.api_key_placeholder),
        )


def app_state(ctx: Context[Any, Any]) -> AppState:
    """The lifespan's `AppState` from a tool's, resource's or prompt's context."""
    request = ctx.request_context
    state = request.lifespan_context
    if not isinstance(state, AppState):  # pragma: no cover - a server built without create_server
        raise TypeError("the server was not built by create_server")
    state.notifier.remember(connection_of(request.session), request.protocol_version)
    return state
