"""A fake Anthropic Messages API for driving the real Claude Code CLI without a model or a network.

It answers `POST /v1/messages` (streamed as server-sent events, or as one JSON message) and keeps every request
body. Its "model" is a script: asked with tools, it calls the tool it was told to once, then answers in plain
text, whatever comes back (a tool result, or later a `<task-notification>` turn Claude Code starts on its own).
Requests without tools (Claude Code's short title and summary requests) get a line of text.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

__all__ = ["FakeModel", "fake_anthropic", "text_of_message"]


def text_of_message(message: dict[str, Any]) -> str:
    """All the text of one message of a request: its text blocks and its tool results' text."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in cast(list[dict[str, Any]], content or []):
        if block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_result":
            inner = block.get("content")
            if isinstance(inner, str):
                parts.append(inner)
            else:
                parts.extend(str(each.get("text", "")) for each in cast(list[dict[str, Any]], inner or []))
    return "\n".join(parts)


@dataclass
class FakeModel:
    """The script: the tool to call (its full name, `mcp__SERVER__TOOL`) with its input, once."""

    tool: str
    arguments: dict[str, Any]
    requests: list[dict[str, Any]] = field(default_factory=lambda: list[dict[str, Any]]())
    tool_calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def turns(self) -> list[dict[str, Any]]:
        """The requests that offered tools: the model turns of the conversation (titles and the like left out)."""
        with self._lock:
            return [request for request in self.requests if request.get("tools")]

    def last_user_texts(self) -> list[str]:
        """The text of the last user message of every model turn, in order."""
        texts: list[str] = []
        for request in self.turns:
            users = [message for message in request.get("messages", []) if message.get("role") == "user"]
            texts.append(text_of_message(users[-1]) if users else "")
        return texts

    def tool_results(self) -> list[str]:
        """The text of each tool result Claude Code sent back, in order, once each (later turns repeat it)."""
        results: dict[str, str] = {}
        for request in self.turns:
            for message in request.get("messages", []):
                content = message.get("content")
                for block in cast(list[dict[str, Any]], content if isinstance(content, list) else []):
                    if block.get("type") == "tool_result":
                        results.setdefault(str(block.get("tool_use_id")), text_of_message({"content": [block]}))
        return list(results.values())

    def reply(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        """The content blocks of the answer, and remember the request."""
        with self._lock:
            self.requests.append(request)
            if not request.get("tools"):
                return [{"type": "text", "text": "A song"}]
            offered = {str(tool.get("name")) for tool in request["tools"]}
            if self.tool_calls == 0 and self.tool in offered:
                self.tool_calls += 1
                return [{"type": "tool_use", "id": f"toolu_{self.tool_calls:04d}", "name": self.tool,
                         "input": self.arguments}]  # fmt: skip
            return [{"type": "text", "text": "Done."}]


def _events(blocks: list[dict[str, Any]], model: str) -> Iterator[tuple[str, dict[str, Any]]]:
    stop = "tool_use" if any(block["type"] == "tool_use" for block in blocks) else "end_turn"
    usage = {"input_tokens": 10, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    yield "message_start", {"type": "message_start", "message": {
        "id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": usage,
    }}  # fmt: skip
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            yield "content_block_start", {"type": "content_block_start", "index": index,
                                          "content_block": {"type": "text", "text": ""}}  # fmt: skip
            delta = {"type": "text_delta", "text": block["text"]}
        else:
            start: dict[str, Any] = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            yield "content_block_start", {"type": "content_block_start", "index": index, "content_block": start}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield "message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                            "usage": {"output_tokens": 5}}  # fmt: skip
    yield "message_stop", {"type": "message_stop"}


@contextmanager
def fake_anthropic(model: FakeModel) -> Generator[str]:
    """Serve the fake API on 127.0.0.1 in a thread; yields its origin (for ANTHROPIC_BASE_URL)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._send(404, "application/json", b'{"type":"error","error":{"type":"not_found_error","message":"no"}}')

        def do_HEAD(self) -> None:
            self._send(200, "text/plain", b"")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                request = cast(dict[str, Any], json.loads(self.rfile.read(length) or b"{}"))
            except json.JSONDecodeError:
                request = {}
            if "count_tokens" in self.path:
                self._send(200, "application/json", b'{"input_tokens": 10}')
                return
            if not self.path.startswith("/v1/messages"):
                self._send(404, "application/json", b'{"type":"error","error":{"type":"not_found_error"}}')
                return
            blocks = model.reply(request)
            name = str(request.get("model") or "claude-fake")
            if not request.get("stream"):
                message = dict(next(_events(blocks, name))[1]["message"], content=blocks)
                stop = "tool_use" if any(block["type"] == "tool_use" for block in blocks) else "end_turn"
                message["stop_reason"] = stop
                self._send(200, "application/json", json.dumps(message).encode())
                return
            body = "".join(f"event: {event}\ndata: {json.dumps(data)}\n\n" for event, data in _events(blocks, name))
            self._send(200, "text/event-stream", body.encode())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
