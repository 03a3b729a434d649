"""The floor for the start-up benchmark: a bare one-tool `MCPServer` on stdio, with the same SDK as the server.

Run as `python tests/bench/floor_server.py`; `bench.py` spawns it beside `python -m ccapi_suno_mcp`.
"""

from __future__ import annotations

from mcp.server import MCPServer

server = MCPServer("floor")


@server.tool()
def ping() -> str:
    """Answer pong."""
    return "pong"


if __name__ == "__main__":
    server.run()
