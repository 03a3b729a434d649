"""The MCP tools: thin wrappers that validate, call the client or the ledger, and render a view."""

from ccapi_suno_mcp.tools._actions import action_tools
from ccapi_suno_mcp.tools._download import register_download_tool
from ccapi_suno_mcp.tools._status import register_status_tools, register_wait_and_list_tools

__all__ = ["action_tools", "register_download_tool", "register_status_tools", "register_wait_and_list_tools"]
