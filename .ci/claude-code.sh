#!/usr/bin/env bash
# A real Claude Code CLI (npm, pinned; no login: HOME is an empty temporary folder, as on a new user's machine)
# registers the server with the README's from-clone lines, run from another folder, and `claude mcp list` must
# report each one Connected. A project .mcp.json made from manifests/clients/claude-code.mcp.json must show as
# Pending approval with no warning about CCAPI_API_KEY, unset here (its ${CCAPI_API_KEY:-} form is empty then).
set -euo pipefail
cd "$(dirname "$0")/.."

CLAUDE_CODE_VERSION="2.1.332"
clone=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
npm install --prefix "$work/npm" --no-audit --no-fund --loglevel=error "@anthropic-ai/claude-code@${CLAUDE_CODE_VERSION}" >/dev/null
claude="$work/npm/node_modules/.bin/claude"
"$claude" --version

# The README's lines for a clone, with the clone's path put in, exactly as a user would paste them.
mapfile -t lines < <(grep -E '^claude mcp add ccapi-suno[a-z-]* .*/path/to/ccapi-suno-mcp' README.md | sed "s|/path/to/ccapi-suno-mcp|$clone|g")
[ "${#lines[@]}" -eq 2 ] || { echo "claude-code: expected the README's two from-clone lines, found ${#lines[@]}"; exit 1; }

export UV_CACHE_DIR="${UV_CACHE_DIR:-$(uv cache dir)}"  # keep uv's cache when HOME moves
export HOME="$work/home"
unset VIRTUAL_ENV CCAPI_API_KEY
mkdir -p "$HOME" "$work/elsewhere" "$work/project"

cd "$work/elsewhere"
for line in "${lines[@]}"; do
  read -r -a words <<<"$line"
  "$claude" "${words[@]:1}" >/dev/null
done
timeout 180 "$claude" mcp list >"$work/list.txt" 2>&1
cat "$work/list.txt"
for name in ccapi-suno ccapi-suno-sandbox; do
  grep -E "^$name: uv run --directory $clone ccapi-suno-mcp.* - ✔ Connected\$" "$work/list.txt" >/dev/null \
    || { echo "claude-code: $name is not Connected"; exit 1; }
  echo "claude-code: $name registered from another folder with the README's line: Connected"
done

# The project snippet, pointed at this clone (until the first release its uvx command finds no package).
cd "$work/project"
uv run --project "$clone" --frozen python - "$clone/manifests/clients/claude-code.mcp.json" "$clone" <<'PY' >.mcp.json
import json, sys
config = json.load(open(sys.argv[1]))
config["mcpServers"]["ccapi-suno"].update(command="uv", args=["run", "--directory", sys.argv[2], "ccapi-suno-mcp"])
print(json.dumps(config))
PY
timeout 180 "$claude" mcp list >"$work/project.txt" 2>&1
cat "$work/project.txt"
grep -E "^ccapi-suno: .* - ⏸ Pending approval" "$work/project.txt" >/dev/null \
  || { echo "claude-code: the project server is not Pending approval"; exit 1; }
if grep -F "Missing environment variables" "$work/project.txt"; then
  echo "claude-code: \${CCAPI_API_KEY:-} should not warn when CCAPI_API_KEY is unset"; exit 1
fi
echo "claude-code: the project .mcp.json waits for approval, and its \${CCAPI_API_KEY:-} raises no warning"
