"""The reference pages, generated from the code so they cannot drift (an MkDocs hook, and a script).

`reference/tools.md` is rendered from the live tool listing (the catalogue and each tool's derived schemas:
the same derivation `listing.json` is held equal to) and `reference/environment.md` from the settings module's
table of variables. The site always gets them freshly rendered at build time; the copies in git (for readers on
GitHub) are written by `scripts/snapshot-tools` (`python docs/hooks/reference.py`), and a build, like
`tests/test_docs.py`, fails while they are stale.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

from ccapi_suno_mcp.catalogue import Catalogue
from ccapi_suno_mcp.settings import DEFAULT_CALL_DEADLINE, ENVIRONMENT, HTTP_ONLY_VARIABLES, SECRET_VARIABLES
from ccapi_suno_mcp.tools import derive_listing
from ccapi_suno_mcp.tools._listing import FIXED_TOOLS

__all__ = ["DOCS", "GENERATED", "environment_page", "on_files", "stale_pages", "tools_page"]

Schema = dict[str, Any]
DOCS = Path(__file__).resolve().parents[1]
_WRITE = "scripts/snapshot-tools"
log = logging.getLogger(f"mkdocs.plugins.{__name__}")


def _cell(text: str) -> str:
    """Text fit for one table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _type_of(schema: Schema) -> str:
    if "enum" in schema:
        return "one of " + ", ".join(f"`{value}`" for value in cast(list[Any], schema["enum"]))
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(str(part) for part in cast(list[Any], kind))
    if kind == "array":
        items = cast(Schema, schema.get("items", {}))
        return f"array of {_type_of(items)}" if items else "array"
    if "$ref" in schema:
        shape = str(schema["$ref"]).rsplit("/", 1)[-1]
        return f"[{shape}](#{shape.lower()})"  # a heading under "Shared result shapes"
    return str(kind or "any")


def _limits(schema: Schema) -> str:
    """The schema's limits in words: lengths, ranges, counts, patterns, default."""
    parts: list[str] = []
    if "minLength" in schema or "maxLength" in schema:
        low, high = schema.get("minLength", 0), schema.get("maxLength")
        parts.append(f"{low}–{high} characters" if low and high else f"at most {high} characters" if high
                     else f"at least {low} characters")  # fmt: skip
    if "minimum" in schema and "maximum" in schema:
        parts.append(f"{schema['minimum']} to {schema['maximum']}")
    elif "maximum" in schema:
        parts.append(f"at most {schema['maximum']}")
    elif "minimum" in schema:
        parts.append(f"at least {schema['minimum']}")
    if "exclusiveMinimum" in schema:
        parts.append(f"more than {schema['exclusiveMinimum']}")
    if "minItems" in schema or "maxItems" in schema:
        parts.append(f"{schema.get('minItems', 0)}–{schema.get('maxItems', '∞')} items")
    items = cast(Schema, schema.get("items", {}))
    for pattern in (schema.get("pattern"), items.get("pattern")):
        if pattern:
            parts.append(f"matches `{pattern}`")
    if "default" in schema:
        parts.append(f"default `{schema['default']}`")
    return "; ".join(parts)


def _parameters(schema: Schema) -> list[str]:
    properties = cast(dict[str, Schema], schema.get("properties", {}))
    if not properties:
        return ["No parameters."]
    required = set(cast(list[str], schema.get("required", [])))
    rows = ["| Parameter | Type | Required | Limits | Description |", "|---|---|---|---|---|"]
    for name, field in properties.items():
        rows.append(
            f"| `{name}` | {_cell(_type_of(field))} | {'yes' if name in required else ''} | "
            f"{_cell(_limits(field))} | {_cell(str(field.get('description', '')))} |"
        )
    return rows


def _returns(schema: Schema) -> str:
    properties = cast(dict[str, Schema], schema.get("properties", {}))
    required = set(cast(list[str], schema.get("required", [])))
    fields = [
        f"`{name}` ({_type_of(field)}{'' if name in required else ', optional'})" for name, field in properties.items()
    ]
    return "Returns (`structuredContent`, with the same facts as text): " + ", ".join(fields) + "."


def _credits(count: int) -> str:
    return f"{count} credit{'' if count == 1 else 's'}"


def _shapes(listing: list[dict[str, Any]]) -> list[str]:
    """The result shapes that several tools share (task, clip, file), each field with its type, once."""
    shapes: dict[str, Schema] = {}
    for entry in listing:
        shapes |= cast(dict[str, Schema], entry["outputSchema"].get("$defs", {}))
    lines = ["", "## Shared result shapes", "", "The results above name these shapes."]
    for name in sorted(shapes):
        lines += ["", f"### {name}", "", _returns(shapes[name]).replace("Returns (`structuredContent`, with the "
                  "same facts as text): ", "Fields: ")]  # fmt: skip
    return lines


def _hints(annotations: Mapping[str, Any]) -> str:
    """The tool's annotations in words, with the spec's defaults filled in."""
    if annotations.get("readOnlyHint", False):
        kind = "read-only"
    elif annotations.get("destructiveHint", True):
        kind = "writes" + (", idempotent" if annotations.get("idempotentHint", False) else "")
    else:
        kind = "not read-only, not destructive, not idempotent"
    world = "open world (reaches CCAPI)" if annotations.get("openWorldHint", True) else "offline (ledger only)"
    return f"{kind}; {world}"


def tools_page() -> str:
    """`reference/tools.md`: every served tool with its parameters, limits, cost and result."""
    catalogue = Catalogue()
    specs = {spec.tool: spec for spec in catalogue}
    disabled = {spec.tool for spec in catalogue if not spec.enabled}
    fixed = {definition.name: definition for definition in FIXED_TOOLS}
    listing = [entry for entry in derive_listing() if entry["name"] not in disabled]
    lines = [
        "# Tool reference",
        "",
        f"<!-- Generated by docs/hooks/reference.py from the catalogue and the tool schemas: run {_WRITE}. -->",
        "",
        f"The server lists **{len(listing)} tools** with every toolset on ({len(specs) - len(disabled)} action "
        f"tools and {len(fixed)} status tools). `CCAPI_SUNO_TOOLSETS` narrows the action tools; the status tools "
        "are always listed. Every limit below is in the tool's input schema, so the client's model sees it too, "
        "and the server refuses anything outside it before a request is sent.",
        "",
        f"Each call is bounded by `CCAPI_SUNO_DEADLINE_SECONDS` ({DEFAULT_CALL_DEADLINE:g} s by default, retries "
        "included), except `suno_wait_for_tasks`, which is bounded by its own `timeout_seconds`.",
        "",
        "Action tools return at once with the submitted task; `suno_wait_for_tasks` follows it to the end. Follow-up "
        "tools take a `clip_id`: the server finds the clip's parent task in its ledger and sends that task id with it "
        "(new-api, the gateway CCAPI runs on, requires it). Every action tool also takes `force` (submit even if an "
        "identical request was made in the last 10 minutes; it never lifts a budget) and `extra` (CCAPI body fields "
        "we have not modelled, sent as given). Costs in credits are Suno's, upstream; what CCAPI charged for each "
        "task is in `suno_get_usage` ([spend and budgets](../spend.md)).",
        "",
        "Beside the tools: the resources `suno://tasks/recent` (JSON, newest first), `suno://tasks/{task_id}` and "
        "`suno://clips/{clip_id}` (with completions for both ids) and `suno://usage` (the same JSON as "
        "`suno_get_usage`), with change notifications in both protocol eras (2025-11-25 and 2026-07-28); "
        "`resources/list` also names recent tasks one by one. Prompts: `compose_song`, `lengthen_song`, "
        "`remix_song`, `release_pack`.",
        "",
        "| Tool | What it does | Cost | Toolset | CCAPI action |",
        "|---|---|---|---|---|",
    ]
    for entry in listing:
        name: str = entry["name"]
        if (spec := specs.get(name)) is not None:
            credits = f" (~{_credits(spec.upstream_credits)})" if spec.upstream_credits is not None else ""
            cost = f"billable{credits}" if spec.billable else "free"
            status = "confirmed" if spec.confirmed else "inferred"
            lines.append(f"| [`{name}`](#{name}) | {_cell(spec.title)} | {cost} | {spec.toolset} | "
                         f"`{spec.action}` ({status}) |")  # fmt: skip
        else:
            lines.append(f"| [`{name}`](#{name}) | {_cell(entry['title'])} | free | status | |")
    if disabled:
        names = ", ".join(f"`{name}`" for name in sorted(disabled))
        lines += ["", f"In the catalogue but disabled (unavailable at CCAPI, so never listed): {names}."]
    for entry in listing:
        name = entry["name"]
        spec = specs.get(name)
        if spec is not None:
            credits = f", about {_credits(spec.upstream_credits)} upstream" if spec.upstream_credits else ""
            cost = f"Billable{credits}" if spec.billable else "Free"
            facts = [cost, f"toolset `{spec.toolset}`", f"CCAPI action `{spec.action}` "
                     f"({'confirmed' if spec.confirmed else 'inferred'})", "returns at once with the task"]  # fmt: skip
        else:
            bounded = fixed[name].bounded
            facts = [
                "Free",
                "always listed",
                "bounded by the call deadline" if bounded else "bounded by `timeout_seconds`",
            ]
        lines += [
            "",
            f"## `{name}` {{#{name}}}",
            "",
            f"**{entry['title']}**. {'; '.join(facts)}; {_hints(entry.get('annotations', {}))}.",
            "",
            "> " + " ".join(str(entry["description"]).split()),
            "",
            *_parameters(entry["inputSchema"]),
            "",
            _returns(entry["outputSchema"]),
        ]
    lines += _shapes(listing)
    return "\n".join(lines) + "\n"


def environment_page() -> str:
    """`reference/environment.md`: every variable the settings module reads, as it describes them."""
    lines = [
        "# Environment variables",
        "",
        f"<!-- Generated by docs/hooks/reference.py from ccapi_suno_mcp.settings.ENVIRONMENT: run {_WRITE}. -->",
        "",
        "The server reads these once, at start-up, from its environment only (for an MCP client, the `env` of "
        "its entry). Secrets are never logged or returned. The HTTP-only ones belong to a team's deployment "
        "([Running it for a team](../team.md)); the stdio packages do not offer them.",
        "",
        "| Variable | Meaning | Notes |",
        "|---|---|---|",
    ]
    for name, meaning in ENVIRONMENT.items():
        notes = [note for flag, note in ((name in SECRET_VARIABLES, "secret"), (name in HTTP_ONLY_VARIABLES,
                 "HTTP transport only")) if flag]  # fmt: skip
        lines.append(f"| `{name}` | {_cell(meaning)} | {', '.join(notes)} |")
    return "\n".join(lines) + "\n"


GENERATED: Mapping[str, Callable[[], str]] = {
    "reference/tools.md": tools_page,
    "reference/environment.md": environment_page,
}


def stale_pages() -> list[str]:
    """The generated pages whose copy in `docs/` differs from what the code generates now."""
    return [path for path, render in GENERATED.items() if _read(DOCS / path) != render()]


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


def on_files(files: Any, config: Any) -> Any:
    """MkDocs' `on_files` event: serve the freshly generated pages, and warn (an error under --strict) when the
    copies in `docs/` are stale."""
    from mkdocs.structure.files import File

    for path, render in GENERATED.items():
        content = render()
        if (existing := files.get_file_from_path(path)) is not None:
            if existing.content_string != content:
                log.warning("docs/%s is stale: run %s and commit it", path, _WRITE)
            files.remove(existing)
        files.append(File.generated(config, path, content=content))
    return files


def main() -> int:
    """Write the generated pages into `docs/`."""
    for path, render in GENERATED.items():
        target = DOCS / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render(), encoding="utf-8")
        print(f"wrote {target.relative_to(DOCS.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
