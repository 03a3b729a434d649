"""The tool list the server reads at start-up is the code's own, and it fits its token budget."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from ccapi_suno_mcp.app import create_server
from ccapi_suno_mcp.ccapi.requests import SunoRequest
from ccapi_suno_mcp.settings import Settings
from ccapi_suno_mcp.tools import derive_listing
from ccapi_suno_mcp.tools._listing import LISTING_PATH
from tool_tokens import FULL_BUDGET, VISIBLE_BUDGET, tool_tokens


def test_the_snapshot_is_what_the_code_derives_run_scripts_snapshot_tools_when_this_fails() -> None:
    assert json.loads(LISTING_PATH.read_text(encoding="utf-8")) == derive_listing()


@pytest.mark.anyio
async def test_the_whole_tool_list_fits_its_token_budget(tmp_path: Path) -> None:
    async with Client(create_server(Settings(home=tmp_path))) as client:
        tools = (await client.list_tools()).tools
    rows, visible, full = tool_tokens(tools)
    assert len(rows) == len(tools) and all(row.visible > 0 for row in rows)
    assert visible <= VISIBLE_BUDGET, (
        f"model-visible {visible} > {VISIBLE_BUDGET}: {sorted(rows, key=lambda r: -r.visible)[:5]}"
    )
    assert full <= FULL_BUDGET, f"tools/list {full} > {FULL_BUDGET}"


def _parameters(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    properties: dict[str, dict[str, Any]] = schema.get("properties", {})
    return properties


def test_every_listed_parameter_has_a_description_and_the_limits_of_its_model() -> None:
    limited = 0
    total = 0
    for entry in derive_listing():
        for name, schema in _parameters(entry["inputSchema"]).items():
            total += 1
            assert schema.get("description"), (entry["name"], name)
            if {
                "enum",
                "pattern",
                "minimum",
                "maximum",
                "exclusiveMinimum",
                "minLength",
                "maxLength",
                "maxItems",
            } & set(schema):
                limited += 1
    assert total >= 179
    assert limited >= 130  # the count the lean list must not lower


def test_the_listed_schema_keeps_every_constraint_of_the_request_models() -> None:
    from ccapi_suno_mcp.catalogue import Catalogue

    listing = {entry["name"]: entry for entry in derive_listing()}
    for spec in Catalogue():
        properties = _parameters(listing[spec.tool]["inputSchema"])
        model: type[SunoRequest] = spec.request
        for name, field in model.model_fields.items():
            full = model.model_json_schema()["properties"][name]
            branch = next((b for b in full.get("anyOf", [full]) if b.get("type") != "null"), full)
            for keyword in ("enum", "pattern", "minimum", "maximum", "exclusiveMinimum", "minLength", "maxLength"):
                if keyword in branch:
                    assert properties[name][keyword] == branch[keyword], (spec.tool, name, keyword)
            assert (name in listing[spec.tool]["inputSchema"].get("required", [])) is field.is_required()
