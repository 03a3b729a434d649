"""Compact JSON schemas: what pydantic derives, without what costs a model's context and says nothing.

Every conversation carries the whole tool list, so each token of it is paid again and again. pydantic's schemas
spend most of theirs on things a reader does not need:

- an automatic `title` on every schema ("Clip Id" for `clip_id`);
- `"default": false` on a boolean (absent means false), and an optional written as
  `anyOf: [T, {"type": "null"}]` with `"default": null`: for an input, not being in
  `required` already says it may be left out, so it is shown as its bare type `T`; for an output, where `null`
  is a real value, as `"type": [T, "null"]`;
- `"type": "string"` beside an `enum` of strings, and `"additionalProperties": true`, JSON Schema's default;
- descriptions inside output schemas (the tool's description and the result's own text explain them).

Nothing else is dropped: every limit, enum, pattern, required marker, default and input description stays.
"""

from __future__ import annotations

from typing import Any, cast

from ccapi_suno_mcp._json import json_list, json_object

__all__ = ["compact_input", "compact_output"]

Schema = dict[str, Any]

# Keywords whose value is a map of names to schemas (so a key there is a name, never a keyword).
_NAMED = ("properties", "$defs", "patternProperties")
# Keywords whose value is one schema, or a list of schemas.
_ONE = ("items", "additionalProperties", "not", "contains", "propertyNames")
_MANY = ("anyOf", "oneOf", "allOf", "prefixItems")


def _without_null(branches: list[Any]) -> Schema | None:
    """The one non-null branch of `anyOf: [T, null]`, or None when the union is anything else."""
    kinds = [json_object(branch) for branch in branches]
    rest = [branch for branch in kinds if branch is not None and branch != {"type": "null"}]
    return rest[0] if len(branches) == 2 and len(rest) == 1 else None


def _as_nullable(schema: Schema) -> Schema:
    """`schema`, also accepting null, in the fewest tokens."""
    kind = schema.get("type")
    if isinstance(kind, str) and "$ref" not in schema:
        if "enum" in schema:
            return {**schema, "enum": [*cast(list[Any], schema["enum"]), None], "type": [kind, "null"]}
        return {**schema, "type": [kind, "null"]}
    if "enum" in schema and "type" not in schema:
        return {**schema, "enum": [*cast(list[Any], schema["enum"]), None]}
    return {"anyOf": [schema, {"type": "null"}]}


def _compact(value: Any, *, output: bool) -> Any:
    schema = json_object(value)
    if schema is None:
        return value
    result: Schema = {}
    for key, item in schema.items():
        if key == "title" or (output and key == "description"):
            continue
        if key in _NAMED and (named := json_object(item)) is not None:
            result[key] = {name: _compact(member, output=output) for name, member in named.items()}
        elif key == "items" and not output:  # the array's own description says what its items are
            inner: Schema = json_object(_compact(item, output=output)) or {}
            result[key] = {name: part for name, part in inner.items() if name != "description"}
        elif key in _ONE:
            result[key] = _compact(item, output=output)
        elif key in _MANY and (members := json_list(item)) is not None:
            result[key] = [_compact(member, output=output) for member in members]
        else:
            result[key] = item
    if "enum" in result and result.get("type") == "string":
        del result["type"]
    if result.get("default", ...) is None or (result.get("type") == "boolean" and result.get("default") is False):
        del result["default"]
    if result.get("additionalProperties") is True:  # JSON Schema's own default
        del result["additionalProperties"]
    if (branches := json_list(result.get("anyOf"))) is not None and (only := _without_null(branches)) is not None:
        del result["anyOf"]
        merged = {**only, **result}
        result = _as_nullable(merged) if output else merged
    return result


def compact_input(schema: Schema) -> Schema:
    """An input schema in fewer tokens, with every constraint and description kept (see the module docstring).

    The root's `"additionalProperties": false` goes too: every tool refuses an unknown name with a message
    naming the accepted ones, and the server's instructions say so once.
    """
    compact = cast(Schema, _compact(schema, output=False))
    if compact.get("additionalProperties") is False:
        del compact["additionalProperties"]
    return compact


def compact_output(schema: Schema) -> Schema:
    """An output schema in fewer tokens: the same shape and types, nullable fields as `[T, "null"]`."""
    return cast(Schema, _compact(schema, output=True))
