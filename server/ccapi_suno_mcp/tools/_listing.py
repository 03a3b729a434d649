"""The tool list: every tool's listing as a checked-in snapshot, and the tools built from it on demand.

Deriving 29 tools' schemas from their signatures and models costs more at start-up than the rest of the server
together, and importing what their functions need (request models, views, the ledger) costs as much again. So
the listing (name, title, description, input and output schema, annotations) lives in `listing.json`, written
by `scripts/snapshot-tools` from the live derivation below and held equal to it by a test. At start-up the
server only reads that file; a tool's function and its argument model are built on its first call.
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from mcp.server.mcpserver.tools import Tool
from mcp.types import ToolAnnotations

from ccapi_suno_mcp.catalogue import Catalogue

if TYPE_CHECKING:
    from ccapi_suno_mcp.settings import Settings

__all__ = [
    "ACTION_ANNOTATIONS",
    "FIXED_TOOLS",
    "LISTING_PATH",
    "OFFLINE",
    "READ_ONLY",
    "ToolDef",
    "compact_annotations",
    "derive_listing",
    "listed_tools",
    "load_function",
]

LISTING_PATH = Path(__file__).with_name("listing.json")

ACTION_ANNOTATIONS = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
)
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True)
OFFLINE = READ_ONLY.model_copy(update={"open_world_hint": False})
DOWNLOAD = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=True)


@dataclass(frozen=True, slots=True)
class ToolDef:
    """A tool as the server registers it; its description and schemas come from its function (or action)."""

    name: str
    title: str
    annotations: ToolAnnotations
    target: str
    """`module:function` of the tool's function, or `action` for a catalogue action's generated function."""
    toolset: str = "status"
    billable: bool = False
    bounded: bool = True
    """Whether the call deadline bounds the whole call (`suno_wait_for_tasks` bounds itself)."""


_STATUS = "ccapi_suno_mcp.tools._status"
FIXED_TOOLS: tuple[ToolDef, ...] = (
    ToolDef("suno_get_task", "Get a task's status", READ_ONLY, f"{_STATUS}:suno_get_task"),
    ToolDef("suno_get_tasks", "Get many tasks' status", READ_ONLY, f"{_STATUS}:suno_get_tasks"),
    ToolDef("suno_wait_for_tasks", "Wait for tasks", READ_ONLY, f"{_STATUS}:suno_wait_for_tasks", bounded=False),
    ToolDef("suno_list_tasks", "List my tasks", OFFLINE, f"{_STATUS}:suno_list_tasks"),
    ToolDef("suno_get_balance", "Get the CCAPI balance", READ_ONLY, f"{_STATUS}:suno_get_balance"),
    ToolDef("suno_get_usage", "Get spend and prices", OFFLINE, "ccapi_suno_mcp.tools._usage:suno_get_usage"),
    ToolDef("suno_download", "Download a file", DOWNLOAD, "ccapi_suno_mcp.tools._download:suno_download"),
)


def _definitions(catalogue: Catalogue) -> Iterator[ToolDef]:
    """Every tool the server can have, listed or not: each catalogue action (disabled ones too), then the rest."""
    for spec in catalogue:
        yield ToolDef(spec.tool, spec.title, ACTION_ANNOTATIONS, "action", toolset=spec.toolset, billable=spec.billable)
    yield from FIXED_TOOLS


def load_function(definition: ToolDef, catalogue: Catalogue) -> Callable[..., Any]:
    """The tool's function, importing what it needs."""
    if definition.target == "action":
        from ccapi_suno_mcp.tools._actions import action_function

        return action_function(catalogue.spec(definition.name), catalogue)
    module, _, attribute = definition.target.partition(":")
    function: Callable[..., Any] = getattr(importlib.import_module(module), attribute)
    return function


# The spec's values for a hint that is not given.
_HINT_DEFAULTS = {"readOnlyHint": False, "destructiveHint": True, "idempotentHint": False, "openWorldHint": True}
_WRITE_ONLY_HINTS = ("destructiveHint", "idempotentHint")
"""Meaningful only when readOnlyHint is false (the spec's words)."""


def compact_annotations(annotations: ToolAnnotations) -> dict[str, Any]:
    """The hints a client could not assume: each one the spec's default already implies is left out.

    A read-only tool keeps only readOnlyHint (and openWorldHint when false): destructive and idempotent mean
    nothing for it.
    """
    hints = annotations.model_dump(mode="json", by_alias=True, exclude_none=True)
    read_only = hints.get("readOnlyHint", False)
    return {
        name: value
        for name, value in hints.items()
        if name not in _HINT_DEFAULTS
        or (value != _HINT_DEFAULTS[name] and not (read_only and name in _WRITE_ONLY_HINTS))
    }


def _description(definition: ToolDef, catalogue: Catalogue, function: Callable[..., Any]) -> str:
    if definition.target == "action":
        return catalogue.spec(definition.name).description()
    return inspect.cleandoc(function.__doc__ or "")


def _derive(definition: ToolDef, catalogue: Catalogue) -> dict[str, Any]:
    """One tool's listing, derived from its function: what `listing.json` must hold for it."""
    from pydantic import TypeAdapter

    from ccapi_suno_mcp.player import player_link
    from ccapi_suno_mcp.tools._schemas import compact_input, compact_output
    from ccapi_suno_mcp.tools._strict import argument_model

    function = load_function(definition, catalogue)
    returned = inspect.signature(function, eval_str=True).return_annotation
    result_model = get_args(returned)[1]  # every tool returns Annotated[CallToolResult, <its result model>]
    entry: dict[str, Any] = {
        "name": definition.name,
        "title": definition.title,
        "description": _description(definition, catalogue, function),
        "inputSchema": compact_input(argument_model(function).model_json_schema(by_alias=True)),
        "outputSchema": compact_output(TypeAdapter(result_model).json_schema()),
        "annotations": compact_annotations(definition.annotations),
    }
    if (link := player_link(definition.name)) is not None:
        entry["_meta"] = link
    return entry


def derive_listing() -> list[dict[str, Any]]:
    """Every tool's listing, derived live from the code with the default catalogue (see the module docstring)."""
    catalogue = Catalogue()
    return [_derive(definition, catalogue) for definition in _definitions(catalogue)]


def _snapshot() -> dict[str, dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(LISTING_PATH.read_text(encoding="utf-8"))
    return {entry["name"]: entry for entry in entries}


def listed_tools(settings: Settings, catalogue: Catalogue) -> list[Tool]:
    """The tools to list: enabled actions of the chosen toolsets, then the status tools, from the snapshot."""
    from ccapi_suno_mcp.tools._strict import StrictTool

    snapshot = _snapshot()
    enabled = {spec.tool for spec in catalogue.enabled}
    tools: list[Tool] = []
    for definition in _definitions(catalogue):
        if definition.target == "action" and definition.name not in enabled:
            continue
        if definition.toolset not in settings.toolsets:
            continue
        tools.append(
            StrictTool.listed(
                snapshot[definition.name],
                factory=lambda definition=definition: load_function(definition, catalogue),
                billable=definition.billable,
                bounded=definition.bounded,
            )
        )
    return tools
