"""The usage tool: what was spent, from the ledger alone (no CCAPI call)."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult

from ccapi_suno_mcp.principals import current_principal_name
from ccapi_suno_mcp.spend import Budgets, UsageView, render_usage, usage
from ccapi_suno_mcp.state import AppState, app_state
from ccapi_suno_mcp.tools._status import tool_result

__all__ = ["current_usage", "suno_get_usage"]


async def current_usage(state: AppState) -> UsageView:
    """The usage now, with a learned price (or "not known yet") for every enabled billable action.

    Raises:
        LedgerError: the ledger cannot be read.
    """
    tools = [spec.tool for spec in state.catalogue.enabled if spec.billable]
    view = await usage(state.ledger, Budgets.of(state.settings, state.ledger.principal), state.calendar, tools=tools)
    name = current_principal_name()
    if name is not None:  # a person who signed in: say whose figures these are
        view.note = f"Usage of {name} (signed in). {view.note}"
    return view


async def suno_get_usage(ctx: Context[AppState, Any]) -> Annotated[CallToolResult, UsageView]:
    """Money spent today, this week, this month and in total, by action and by day; learned prices; budgets.
    Free, offline, instant."""
    view = await current_usage(app_state(ctx))
    return tool_result(view, render_usage(view))
