"""The MCP bundle's entry point, for a host that runs `server.entry_point` with uv itself.

It sits at the bundle's root, beside pyproject.toml, so running it as a file puts no package folder first on
sys.path (the package's own `http` module would hide the standard library's). `uv run` has installed the
bundled project, so the import finds it.
"""

from ccapi_suno_mcp.cli import main

main()
