"""Bad input, fuzzed: arguments for every tool generated from its listed input schema, valid and invalid.

Invalid arguments must end in a clear tool error before anything reaches CCAPI; valid ones may be refused
(an unknown clip, a task CCAPI does not know) but never crash the server. Hypothesis runs in a worker
thread and calls the in-memory client on the test's event loop.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import string
import subprocess
import sys
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.abc
import anyio.from_thread
import anyio.to_thread
import pytest
from anyio.streams.text import TextReceiveStream
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp.types import CallToolResult, Tool

from ccapi_suno_mcp.catalogue import ACTIONS
from harness import Harness, running, text_of

if TYPE_CHECKING:
    from conftest import Figures

Schema = dict[str, Any]
Call = tuple[str, dict[str, Any]]
ACTION_TOOLS = frozenset(spec.tool for spec in ACTIONS if spec.enabled)
EXAMPLES_PER_TOOL = 25
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_TOOL,
    deadline=None,
    database=None,
    derandomize=True,  # the same inputs on every run: a failure in CI reproduces on any machine
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
# Printable ASCII: regex classes such as \s mean the same to Python and to pydantic's Rust engine here.
ASCII = string.ascii_letters + string.digits + string.punctuation + " "
# Text a tool accepts: no control character but newline and tab, no unpaired surrogate.
CLEAN_TEXT = st.characters(exclude_categories=("Cc", "Cs")) | st.sampled_from("\n\t")


def clean(text: str) -> bool:
    """Whether a tool accepts this text: see CLEAN_TEXT."""
    return all(character in "\n\t" or unicodedata.category(character) not in ("Cc", "Cs") for character in text)


JSON_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(CLEAN_TEXT)
)  # fmt: skip


def resolve(schema: Schema, root: Schema) -> Schema:
    reference = schema.get("$ref")
    if not isinstance(reference, str):
        return schema
    return resolve(cast(Schema, root["$defs"][reference.rsplit("/", 1)[-1]]), root)


def alternatives(schema: Schema, root: Schema) -> list[Schema]:
    """The schema's branches: `anyOf` members, or the schema itself."""
    schema = resolve(schema, root)
    return [resolve(branch, root) for branch in schema.get("anyOf", [schema])]


# -- valid values ------------------------------------------------------------------------------------------


def valid_value(schema: Schema, root: Schema) -> st.SearchStrategy[Any]:
    return st.one_of([_valid_branch(branch, root) for branch in alternatives(schema, root)])


def _valid_branch(schema: Schema, root: Schema) -> st.SearchStrategy[Any]:
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    match schema.get("type"):
        case "null":
            return st.none()
        case "boolean":
            return st.booleans()
        case "integer":
            return st.integers(min_value=schema.get("minimum"), max_value=schema.get("maximum"))
        case "number":
            low = schema.get("minimum", schema.get("exclusiveMinimum"))
            high = schema.get("maximum", schema.get("exclusiveMaximum"))
            return st.floats(
                min_value=low, max_value=high, allow_nan=False, allow_infinity=False,
                exclude_min="exclusiveMinimum" in schema, exclude_max="exclusiveMaximum" in schema,
            )  # fmt: skip
        case "string":
            low, high = schema.get("minLength", 0), schema.get("maxLength")
            if "pattern" in schema:
                matching: st.SearchStrategy[str] = st.from_regex(str(schema["pattern"]), fullmatch=True)
                return matching.filter(lambda text: low <= len(text) <= (high or len(text)) and clean(text))
            return st.text(CLEAN_TEXT, min_size=low, max_size=min(high or 200, 200)) | st.text(
                CLEAN_TEXT, min_size=low, max_size=high
            )
        case "array":
            items = valid_value(schema.get("items", {}), root)
            return st.lists(items, min_size=schema.get("minItems", 0), max_size=schema.get("maxItems", 5))
        case "object":
            return st.dictionaries(st.text(alphabet=string.ascii_lowercase, max_size=12), JSON_SCALARS, max_size=3)
        case other:
            raise AssertionError(f"the fuzzer does not know schema type {other!r}: teach it")


def valid_arguments(tool: Tool) -> st.SearchStrategy[dict[str, Any]]:
    schema = tool.input_schema
    properties: dict[str, Schema] = schema.get("properties", {})
    required = set(schema.get("required", []))
    return st.fixed_dictionaries(
        {name: valid_value(spec, schema) for name, spec in properties.items() if name in required},
        # An optional parameter is listed as its bare type; null means "not given", as leaving it out does.
        optional={
            name: valid_value(spec, schema) | st.none() for name, spec in properties.items() if name not in required
        },
    )


# -- invalid values: each violates every branch of its schema, in a way pydantic's lax mode does not forgive ---


def _not_any_type(*types: str) -> st.SearchStrategy[Any]:
    """Values of none of the JSON types given, type confusion included: a boolean or number sent as a string
    ("yes", "true", "5") or a boolean sent for a number. Strict mode forgives only an integer for a number."""
    candidates: dict[str, st.SearchStrategy[Any]] = {
        "string": st.text(alphabet=string.ascii_letters, min_size=1, max_size=8).map(lambda text: "x" + text)
        | st.sampled_from(["yes", "no", "true", "false", "1", "0", "5", "2.5", "null"]),
        "integer": st.integers(min_value=2, max_value=10**6),
        "number": st.floats(min_value=1.5, max_value=1e6).filter(lambda value: not value.is_integer()),
        "boolean": st.booleans(),
        "array": st.lists(st.integers(), min_size=1, max_size=3),
        "object": st.dictionaries(st.sampled_from("abc"), st.integers(), min_size=1, max_size=2),
    }
    strict = {"number": {"integer"}}
    forgiven = {kind for given in types for kind in strict.get(given, set())} | set(types)
    return st.one_of([strategy for kind, strategy in candidates.items() if kind not in forgiven])


def invalid_value(schema: Schema, root: Schema, *, optional: bool = False) -> st.SearchStrategy[Any]:
    """A value the schema refuses; null only for a required one (null is "not given" for an optional one)."""
    branches = alternatives(schema, root)
    types = [str(branch.get("type")) for branch in branches]
    wrong: list[st.SearchStrategy[Any]] = [_not_any_type(*types)]
    if "null" not in types and not optional:
        wrong.append(st.none())
    if len(branches) - types.count("null") == 1:  # one real branch: its limits can be broken too
        [branch] = [branch for branch in branches if branch.get("type") != "null"]
        wrong.extend(_out_of_limits(branch, root))
    return st.one_of(wrong)


def _out_of_limits(schema: Schema, root: Schema) -> list[st.SearchStrategy[Any]]:
    broken: list[st.SearchStrategy[Any]] = []
    if "enum" in schema:
        broken.append(st.text(alphabet=ASCII, max_size=10).filter(lambda text: text not in schema["enum"]))
    if schema.get("minLength", 0) > 0:
        broken.append(st.just(""))
    if "maxLength" in schema:
        too_long = schema["maxLength"] + 1
        broken.append(st.text(alphabet=ASCII, min_size=too_long, max_size=too_long + 20))
    if "pattern" in schema:
        pattern = re.compile(schema["pattern"])
        broken.append(st.text(alphabet=ASCII, max_size=30).filter(lambda text: not pattern.fullmatch(text)))
    if "minimum" in schema:
        broken.append(st.integers(min_value=math.floor(schema["minimum"]) - 10**6, max_value=schema["minimum"] - 1))
    if "maximum" in schema:
        broken.append(st.integers(min_value=math.ceil(schema["maximum"]) + 1, max_value=schema["maximum"] + 10**6))
    if "exclusiveMinimum" in schema:
        broken.append(st.just(schema["exclusiveMinimum"]))
    if schema.get("type") == "array":
        low, high = schema.get("minItems", 0), schema.get("maxItems")
        item = valid_value(schema.get("items", {}), root)
        if low > 0:
            broken.append(st.lists(item, max_size=low - 1))
        if high is not None:
            broken.append(st.lists(item, min_size=high + 1, max_size=high + 3))
        broken.append(st.lists(invalid_value(schema.get("items", {}), root), min_size=max(low, 1), max_size=high))
    return broken


@st.composite
def invalid_call(draw: st.DrawFn, tool: Tool) -> tuple[dict[str, Any], str]:
    """Arguments with exactly one thing wrong, and the name the error must mention."""
    schema = tool.input_schema
    properties: dict[str, Schema] = schema.get("properties", {})
    required: list[str] = list(schema.get("required", []))
    arguments = draw(valid_arguments(tool))
    texts = [
        name for name, spec in properties.items() if "string" in {b.get("type") for b in alternatives(spec, schema)}
    ]
    ways = ["value", "unknown"] if properties else ["unknown"]
    if required:
        ways.append("missing")
    if texts:
        ways.append("text")
    way = draw(st.sampled_from(ways))
    if way == "missing":
        name = draw(st.sampled_from(required))
        arguments.pop(name, None)
    elif way == "unknown":
        unknown = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=20)
        name = draw(unknown.filter(lambda text: text not in properties))
        arguments[name] = draw(JSON_SCALARS)
    elif way == "text":  # a control character (not newline or tab) or an unpaired surrogate, anywhere in the text
        name = draw(st.sampled_from(texts))
        dirty = draw(st.sampled_from(["\x00", "\x1b", "\r", "\x7f", "\x85", "\ud800", "\udfff"]))
        arguments[name] = draw(st.sampled_from(["", "a ", "[Verse] la la\n"])) + dirty + "x"
    else:
        name = draw(st.sampled_from(sorted(properties)))
        arguments[name] = draw(invalid_value(properties[name], schema, optional=name not in required))
    return arguments, name


# -- the runs ----------------------------------------------------------------------------------------------


def fuzzer(strategy: st.SearchStrategy[Any], body: Callable[[Any], None]) -> Callable[[], None]:
    """A Hypothesis run of `body` over `strategy`, to be called in a worker thread."""

    @FUZZ_SETTINGS
    @given(strategy)
    def fuzz(example: Any) -> None:
        body(example)

    return fuzz


def caller(harness: Harness) -> Callable[[str, dict[str, Any]], CallToolResult]:
    """Calls a tool from a worker thread, on the test's event loop."""

    def call_tool(tool: str, arguments: dict[str, Any]) -> CallToolResult:
        return anyio.from_thread.run(harness.client.call_tool, tool, arguments)

    return call_tool


async def list_tools(harness: Harness) -> list[Tool]:
    tools = (await harness.client.list_tools()).tools
    assert len(tools) == len(ACTION_TOOLS) + 7
    return tools


def crashes(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if "unexpected exception" in record.getMessage()]


@pytest.mark.anyio
async def test_invalid_arguments_to_any_tool_are_refused_clearly_and_nothing_reaches_ccapi(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, figures: Figures
) -> None:
    tried: list[Call] = []
    async with running(tmp_path) as harness:
        tools = await list_tools(harness)
        call_tool = caller(harness)
        for tool in tools:

            def refused_before_ccapi(case: tuple[dict[str, Any], str], tool: str = tool.name) -> None:
                arguments, wrong = case
                tried.append((tool, arguments))
                result = call_tool(tool, arguments)
                message = text_of(result)
                assert result.is_error, (tool, arguments, result)
                assert message.startswith(f"Error executing tool {tool}: "), message
                assert wrong in message, (wrong, message)
                assert harness.sandbox.stats.requests == 0, (tool, arguments)

            with anyio.fail_after(60):
                await anyio.to_thread.run_sync(fuzzer(invalid_call(tool), refused_before_ccapi))
        requests = harness.sandbox.stats.requests
    figures.add("inputs fuzzed", len(tried))
    figures.add("invalid inputs fuzzed", len(tried))
    assert {tool for tool, _ in tried} == {tool.name for tool in tools}
    assert requests == 0
    assert crashes(caplog) == []


@pytest.mark.anyio
async def test_valid_arguments_to_any_tool_never_crash_the_server(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, figures: Figures
) -> None:
    caplog.set_level(logging.INFO)
    tried: list[Call] = []
    refused: list[Call] = []
    async with running(tmp_path) as harness:
        tools = await list_tools(harness)
        call_tool = caller(harness)
        for tool in tools:

            def answered_or_refused_with_a_reason(arguments: dict[str, Any], tool: str = tool.name) -> None:
                tried.append((tool, arguments))
                result = call_tool(tool, arguments)
                if not result.is_error:
                    assert result.structured_content is not None, (tool, arguments, result)
                    return
                refused.append((tool, arguments))
                message = text_of(result)
                assert message.startswith(f"Error executing tool {tool}: ") and len(message) > 40, message

            with anyio.fail_after(60):
                await anyio.to_thread.run_sync(fuzzer(valid_arguments(tool), answered_or_refused_with_a_reason))
        stats = harness.sandbox.stats
    figures.add_sandbox(stats)
    figures.add("inputs fuzzed", len(tried))
    figures.add("valid inputs fuzzed", len(tried))
    assert {tool for tool, _ in tried} == {tool.name for tool in tools}
    assert len(refused) < len(tried)
    assert stats.accepted_submits > 0
    assert crashes(caplog) == []


async def answer_to(stdout: anyio.abc.ByteReceiveStream, request_id: int) -> dict[str, Any]:
    buffer = ""
    async for chunk in TextReceiveStream(stdout):
        *lines, buffer = (buffer + chunk).split("\n")
        for line in lines:
            message = cast(dict[str, Any], json.loads(line))
            if message.get("id") == request_id:
                return message
    raise AssertionError("the server closed stdout without answering")


async def call_over_raw_stdio(home: Path, line: str) -> dict[str, Any]:
    """Send one hand-written `tools/call` line (id 2) to the real command, as a non-Python client might, and
    return its result; the Python client cannot write such lines (it sends NaN as null)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CCAPI_")}
    env["CCAPI_SUNO_HOME"] = str(home)
    handshake = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"},
        }},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
    ]  # fmt: skip
    command = [sys.executable, "-m", "ccapi_suno_mcp", "--sandbox"]
    async with await anyio.open_process(command, env=env, stderr=subprocess.DEVNULL) as process:
        assert process.stdin is not None and process.stdout is not None
        lines = [*(json.dumps(message) for message in handshake), line]
        await process.stdin.send("".join(f"{text}\n" for text in lines).encode())
        answer = await answer_to(process.stdout, 2)
        await process.stdin.aclose()  # the server exits at the end of its input
    return cast(dict[str, Any], answer["result"])


@pytest.mark.anyio
async def test_nan_sent_over_the_wire_by_a_lenient_client_is_refused_clearly(tmp_path: Path, figures: Figures) -> None:
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "suno_generate_music"}}
    arguments = '{"description": "a song", "extra": {"auto_lyrics": NaN}}'  # what json.dumps would never write
    line = json.dumps(call).removesuffix("}}") + f', "arguments": {arguments}}}}}'
    with anyio.fail_after(30):
        result = await call_over_raw_stdio(tmp_path, line)
    figures.add("inputs fuzzed", 1)
    [content] = result["content"]
    assert result["isError"] is True
    assert "extra" in content["text"] and "Nothing was submitted" in content["text"], content
