"""ccapi-suno-mcp: an MCP server for CCAPI's Suno API."""

__version__ = "0.1.0"  # kept equal to pyproject.toml's by scripts/bump-version (tests/test_packaging.py checks)

__all__ = ["__version__"]
