"""Serving MCP over stdio, with an answer for every line, even one the SDK cannot decode.

The SDK's stdio reader hands a line it cannot decode (for example a lone `\\ud800` escape inside a string,
which Python's own JSON reader accepts but the SDK's strict one does not) to the server as an exception,
which the server logs at DEBUG and drops: the client then waits for an answer until its own time-out. Here
the read stream is wrapped so such a line is answered at once with a JSON-RPC error, invalid params for its
id when the id can be read, else a parse error, and one WARNING line is logged.

A line nested deeper than the SDK's reader goes (`MAX_JSON_DEPTH`) is answered the same way: its id is read by a
flat scan of the top-level object, since no recursive reader can be trusted with 20,000 levels.
"""

from __future__ import annotations

import json
import logging
import re
from types import TracebackType
from typing import Any, Self

import anyio
from mcp.server import MCPServer
from mcp.server.stdio import stdio_server
from mcp.shared._stream_protocols import ReadStream, WriteStream
from mcp.shared.message import SessionMessage
from mcp.types import INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR, ErrorData, JSONRPCError
from pydantic import ValidationError

from ccapi_suno_mcp._json import json_object

__all__ = ["answer_for_unreadable", "serve_stdio"]

logger = logging.getLogger(__name__)

MAX_JSON_DEPTH = 200
"""How deep a message's JSON may nest: the SDK's reader (pydantic-core) refuses anything deeper."""
_TOO_DEEP = "recursion limit exceeded"
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NESTED = object()


def _problems(error: Exception) -> list[dict[str, Any]]:
    return [dict(item) for item in error.errors()] if isinstance(error, ValidationError) else []


def _error(request_id: int | str | None, code: int, message: str) -> JSONRPCError:
    return JSONRPCError(jsonrpc="2.0", id=request_id, error=ErrorData(code=code, message=message))


def top_level_members(line: str) -> dict[str, Any]:
    """The members of the JSON object on `line`, read without recursion, however deep it nests: scalars with
    their values, objects and arrays (and anything unreadable) as a placeholder. Empty when it is no object."""
    text = line.strip()
    members: dict[str, Any] = {}
    if not text.startswith("{"):
        return members
    decoder = json.JSONDecoder()
    depth, position = 0, 0
    while position < len(text):
        character = text[position]
        if character == '"':
            string = _STRING.match(text, position)
            if string is None:
                break  # an unterminated string: nothing more can be read
            position = string.end()
            colon = _skip_space(text, position)
            if depth != 1 or colon >= len(text) or text[colon] != ":":
                continue
            value_at = _skip_space(text, colon + 1)
            try:
                name = json.loads(string.group())
                value, after = (
                    decoder.raw_decode(text, value_at) if text[value_at : value_at + 1] not in "{[" else (_NESTED, 0)
                )
            except ValueError:
                continue
            if isinstance(name, str):
                members.setdefault(name, value)
            position = max(position, after)
            continue
        if character in "{[":
            depth += 1
        elif character in "}]":
            depth -= 1
        position += 1
    return members


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _answer_too_deep(line: str | None, reason: str) -> JSONRPCError | None:
    members = top_level_members(line or "")
    request_id = members.get("id")
    message = (
        f"the message nests JSON more than {MAX_JSON_DEPTH} levels deep, the most this server reads ({reason}); "
        "send flatter arguments"
    )
    if isinstance(request_id, bool) or not isinstance(request_id, int | str):
        return None if "method" in members else _error(None, PARSE_ERROR, f"Parse error: {message}")
    return _error(request_id, INVALID_PARAMS, f"Invalid params: {message}")


def answer_for_unreadable(error: Exception) -> JSONRPCError | None:
    """The JSON-RPC error answering a line the SDK could not decode, or None for a notification.

    pydantic keeps the raw line as the error's input. When a lenient JSON reader (which takes lone surrogates)
    can read an id from it, the answer is invalid params for a line that is not valid JSON to the SDK, or
    invalid request for valid JSON that is not a JSON-RPC request; otherwise a parse error with a null id.
    """
    problems = _problems(error)
    reason = "; ".join(str(item.get("msg", "")) for item in problems) or type(error).__name__
    line = next((item["input"] for item in problems if isinstance(item.get("input"), str)), None)
    if _TOO_DEEP in reason:
        return _answer_too_deep(line, reason)
    message: dict[str, Any] | None = None
    if line is not None:
        try:
            message = json_object(json.loads(line))
        except (ValueError, RecursionError):
            message = None
    if message is None:
        return _error(None, PARSE_ERROR, f"Parse error: the line is not a JSON-RPC message ({reason})")
    request_id = message.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, int | str):
        has_method = "method" in message
        return None if has_method else _error(None, INVALID_REQUEST, f"Invalid request ({reason})")
    if any(item.get("type") == "json_invalid" for item in problems):
        return _error(
            request_id,
            INVALID_PARAMS,
            "Invalid params: the request holds text that is not valid Unicode (a lone UTF-16 surrogate escape "
            f"such as \\ud800, or a broken escape: {reason}); send whole characters, surrogates only in pairs",
        )
    return _error(request_id, INVALID_REQUEST, f"Invalid request ({reason})")


class _AnsweringReader:
    """The SDK's stdio read stream, minus the lines it could not decode: those are answered here."""

    def __init__(self, inner: ReadStream[SessionMessage | Exception], replies: WriteStream[SessionMessage]) -> None:
        self._inner = inner
        self._replies = replies

    @property
    def last_context(self) -> Any:
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> SessionMessage | Exception:
        while True:
            item = await self._inner.receive()
            if not isinstance(item, Exception):
                return item
            answer = answer_for_unreadable(item)
            logger.warning(
                "a message from the client could not be decoded%s: %s",
                f"; answered {answer.error.code}" if answer is not None else " (a notification: not answered)",
                answer.error.message if answer is not None else item,
            )
            if answer is not None:
                await self._replies.send(SessionMessage(answer))

    async def aclose(self) -> None:
        await self._inner.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc_val: BaseException | None, exc_tb: TracebackType | None
    ) -> bool | None:
        await self.aclose()
        return None


async def serve_stdio(server: MCPServer[Any]) -> None:
    """`server.run_stdio_async()`, answering undecodable lines instead of dropping them."""
    lowlevel = server._lowlevel_server  # pyright: ignore[reportPrivateUsage] - the SDK's documented way in
    async with stdio_server() as (read_stream, write_stream):
        reader = _AnsweringReader(read_stream, write_stream)
        await lowlevel.run(reader, write_stream, lowlevel.create_initialization_options())
