"""A stand-in for the Anthropic Messages API, so a real Claude Code CLI runs without a model or the network.

Each `POST /v1/messages` is logged. A request that offers the tool `tool` and holds no tool result yet is
answered with a call of that tool with `arguments`; once a tool result is in the conversation, with the text
`Done: <the result>`. Any other request (Claude Code's title and side requests) gets a short text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


class FakeModel:
    def __init__(self, tool: str, arguments: dict[str, Any]) -> None:
        self.tool = tool
        self.arguments = arguments
        self.requests: list[dict[str, Any]] = []
        self.app = Starlette(routes=[Route("/v1/messages", self._messages, methods=["POST"])])

    def tool_results(self) -> list[str]:
        """The text of every tool result Claude Code sent back, in order."""
        found: list[str] = []
        for body in self.requests:
            for message in body.get("messages", []):
                content = message.get("content")
                if isinstance(content, list):
                    for block in cast(list[dict[str, Any]], content):
                        if block.get("type") == "tool_result":
                            found.append(json.dumps(block.get("content")))
        return found

    async def _messages(self, request: Request) -> Response:
        body = cast(dict[str, Any], await request.json())
        self.requests.append(body)
        offered = any(tool.get("name") == self.tool for tool in body.get("tools", []))
        answered = any(
            isinstance(message.get("content"), list)
            and any(block.get("type") == "tool_result" for block in message["content"])
            for message in body.get("messages", [])
        )
        if offered and not answered:
            block: dict[str, Any] = {"type": "tool_use", "id": "toolu_01", "name": self.tool, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(self.arguments)}
            stop = "tool_use"
        else:
            text = "Done: " + (self.tool_results()[-1] if answered else "ok")
            block = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": text}
            stop = "end_turn"
        if not body.get("stream"):
            whole = {**block, "input": self.arguments} if stop == "tool_use" else {**block, "text": delta["text"]}
            return JSONResponse(_message(whole, stop))
        return StreamingResponse(_events(block, delta, stop), media_type="text/event-stream")


def _message(content: dict[str, Any], stop: str) -> dict[str, Any]:
    return {
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-fake", "content": [content],
        "stop_reason": stop, "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1},
    }  # fmt: skip


def _events(block: dict[str, Any], delta: dict[str, Any], stop: str) -> Iterator[str]:
    start: dict[str, Any] = {**_message(block, stop), "content": list[Any](), "stop_reason": None}
    events: tuple[tuple[str, dict[str, Any]], ...] = (
        ("message_start", {"type": "message_start", "message": start}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop}, "usage": {"output_tokens": 1}}),
        ("message_stop", {"type": "message_stop"}),
    )
    for name, data in events:
        yield f"event: {name}\ndata: {json.dumps(data)}\n\n"
