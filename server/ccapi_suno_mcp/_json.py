"""Typed views of parsed JSON, so that raw payloads are narrowed in one place."""

from __future__ import annotations

from typing import Any, cast

__all__ = ["json_list", "json_object"]


def json_object(value: object) -> dict[str, Any] | None:
    """`value` as a JSON object, or None when it is not one."""
    return cast(dict[str, Any], value) if isinstance(value, dict) else None


def json_list(value: object) -> list[Any] | None:
    """`value` as a JSON array, or None when it is not one."""
    return cast(list[Any], value) if isinstance(value, list) else None
