"""The MCP tools: thin wrappers that validate, call the client or the ledger, and render a view.

The tool list comes from the checked-in snapshot (`_listing`); each tool's function is imported on its first call.
"""

from ccapi_suno_mcp.tools._listing import derive_listing, listed_tools

__all__ = ["derive_listing", "listed_tools"]
