# Claude Code: register ccapi-suno with the key from your shell (export CCAPI_API_KEY=sk-... first).
# Local scope by default; put `-s user` or `-s project` before the name for another scope.
# Keep the server name before -e: -e takes every KEY=VALUE after it and would swallow the name.
claude mcp add ccapi-suno -e CCAPI_API_KEY="$CCAPI_API_KEY" -- uvx ccapi-suno-mcp
# Try it offline first (the built-in emulator of CCAPI: no key, no network, no cost):
# claude mcp add ccapi-suno-sandbox -- uvx ccapi-suno-mcp --sandbox
