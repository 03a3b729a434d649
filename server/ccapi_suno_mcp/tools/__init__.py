"""The MCP tools: thin wrappers that validate, call the client or the ledger, and render a view."""

from ccapi_suno_mcp.tools._actions import action_tools
from ccapi_suno_mcp.tools._download import download_tool
from ccapi_suno_mcp.tools._status import status_tools
from ccapi_suno_mcp.tools._strict import StrictTool

__all__ = ["StrictTool", "action_tools", "download_tool", "status_tools"]
