"""Tokens of the tool list, counted as the issue measures them: o200k_base over compact `tools/list` JSON.

"Model-visible" is what an assistant's model is sent of each tool: its name, description and input schema.
Used by `test_listing.py` (a deterministic budget) and by the benchmark (the figures per tool).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import bpe_openai  # pyright: ignore[reportMissingTypeStubs] - it ships no stubs
from mcp.types import Tool

__all__ = ["FULL_BUDGET", "VISIBLE_BUDGET", "ToolTokens", "count_tokens", "tool_tokens"]

VISIBLE_BUDGET = 6_500
"""Most tokens the model-visible part of every tool may take together (all toolsets on)."""
FULL_BUDGET = 13_000
"""Most tokens the whole `tools/list` answer may take."""


@cache
def _encoding() -> Any:
    return bpe_openai.get_encoding("o200k_base")


def count_tokens(value: Any) -> int:
    """o200k_base tokens of `value` as compact JSON (no spaces, non-ASCII as is)."""
    return len(_encoding().encode(json.dumps(value, separators=(",", ":"), ensure_ascii=False)))


@dataclass(frozen=True)
class ToolTokens:
    name: str
    visible: int
    output: int
    full: int


def tool_tokens(tools: Sequence[Tool]) -> tuple[list[ToolTokens], int, int]:
    """Per tool: model-visible, output-schema and whole-entry tokens; then the visible total and the full list's."""
    wire: list[dict[str, Any]] = [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools]
    rows = [
        ToolTokens(
            entry["name"],
            count_tokens({key: entry[key] for key in ("name", "description", "inputSchema") if key in entry}),
            count_tokens(entry.get("outputSchema", {})),
            count_tokens(entry),
        )
        for entry in wire
    ]
    return rows, sum(row.visible for row in rows), count_tokens({"tools": wire})
