#!/usr/bin/env bash
# A real, third-party MCP client drives the server: the MCP Inspector CLI (TypeScript SDK, pinned), over stdio in
# --sandbox mode (one process per step, so the ledger and the sandbox state must survive restarts), then over HTTP.
set -euo pipefail
cd "$(dirname "$0")/.."

INSPECTOR_VERSION="2.12.0"
work=$(mktemp -d)
trap 'kill "${http_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
npm install --prefix "$work" --no-audit --no-fund --loglevel=error "@modelcontextprotocol/inspector@${INSPECTOR_VERSION}" >/dev/null
inspector="$work/node_modules/.bin/mcp-inspector"
export CCAPI_SUNO_HOME="$work/home"
# The Inspector passes only a safe default environment to the server it launches: hand over the home with -e.
server=(-e "CCAPI_SUNO_HOME=$CCAPI_SUNO_HOME" uv run --frozen ccapi-suno-mcp --sandbox)

check() {  # check FILE PYTHON-EXPRESSION-OVER-r MESSAGE
  uv run --frozen python -c "import json,sys; r=json.load(open(sys.argv[1]))['result']; assert $2, sys.argv[2]" "$1" "$3"
  echo "inspector: $3"
}

"$inspector" --cli -q "${server[@]}" --method tools/list --strict --format json >"$work/tools.json"
check "$work/tools.json" "len(r['tools']) == 29 and all('outputSchema' in t for t in r['tools'])" \
  "tools/list: 29 tools with output schemas, --strict schema lint clean"

"$inspector" --cli -q "${server[@]}" --method tools/call --tool-name suno_generate_music \
  --tool-args-json '{"description": "a calm piano piece for CI", "tags": "piano, calm"}' --format json >"$work/generate.json"
check "$work/generate.json" "r['structuredContent']['task_id'].startswith('task_')" "tools/call suno_generate_music"
task_id=$(uv run --frozen python -c "import json,sys; print(json.load(open(sys.argv[1]))['result']['structuredContent']['task_id'])" "$work/generate.json")

"$inspector" --cli -q "${server[@]}" --protocol-era modern --method tools/call --tool-name suno_wait_for_tasks \
  --tool-args-json "{\"task_ids\": [\"$task_id\"], \"timeout_seconds\": 60}" --format json >"$work/wait.json"
check "$work/wait.json" "r['structuredContent']['all_done'] and r['structuredContent']['tasks'][0]['status'] == 'SUCCESS'" \
  "tools/call suno_wait_for_tasks in a new process (2026-07-28): the task finished"

"$inspector" --cli -q "${server[@]}" --method resources/read --uri suno://tasks/recent --format json >"$work/recent.json"
check "$work/recent.json" "[t['task_id'] for t in json.loads(r['contents'][0]['text'])] == ['$task_id']" \
  "resources/read suno://tasks/recent: the ledger in CCAPI_SUNO_HOME kept the task across processes"

# Spend, as a new user meets it with a $0.10 day: the first song's cost shows, and the second generation is refused
# (the Inspector CLI has no elicitation, so the server cannot ask the user) with nothing submitted.
budget=(-e "CCAPI_SUNO_HOME=$CCAPI_SUNO_HOME" -e "CCAPI_SUNO_DAILY_BUDGET_USD=0.10" uv run --frozen ccapi-suno-mcp --sandbox)
"$inspector" --cli -q "${budget[@]}" --method tools/call --tool-name suno_get_usage --tool-args-json '{}' \
  --format json >"$work/usage.json"
check "$work/usage.json" "r['structuredContent']['today']['usd'] == 0.08 and r['structuredContent']['prices_usd']['suno_generate_music'] == 0.08" \
  "tools/call suno_get_usage: the first song cost \$0.08, the learned price of suno_generate_music"
status=0
"$inspector" --cli -q "${budget[@]}" --method tools/call --tool-name suno_generate_music \
  --tool-args-json '{"description": "a second piece for CI", "tags": "piano"}' --format json >"$work/over.json" 2>/dev/null || status=$?
[ "$status" -eq 5 ] || { echo "inspector: expected the over-budget call to be a tool error (exit 5), got $status"; exit 1; }
check "$work/over.json" "r['isError'] and 'Over budget' in r['content'][0]['text'] and 'CCAPI_SUNO_DAILY_BUDGET_USD' in r['content'][0]['text']" \
  "tools/call suno_generate_music over a \$0.10 day: refused, naming the budget to raise"
"$inspector" --cli -q "${budget[@]}" --method tools/call --tool-name suno_list_tasks --tool-args-json '{}' \
  --format json >"$work/after.json"
check "$work/after.json" "[t['task_id'] for t in r['structuredContent']['tasks']] == ['$task_id']" \
  "tools/call suno_list_tasks: nothing was submitted past the budget"

port=$(uv run --frozen python -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
token="ci-token-$RANDOM$RANDOM"
CCAPI_SUNO_HTTP_TOKEN="$token" uv run --frozen ccapi-suno-mcp --sandbox --transport http --port "$port" 2>"$work/http.log" &
http_pid=$!
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$port/mcp" && break
  sleep 0.1
done
"$inspector" --cli -q "http://127.0.0.1:$port/mcp" --transport http --header "Authorization: Bearer $token" \
  --method tools/call --tool-name suno_list_tasks --tool-args-json '{}' --format json >"$work/http.json"
check "$work/http.json" "'tasks' in r['structuredContent']" "tools/call over streamable HTTP with the bearer token"
