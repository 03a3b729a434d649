"""Benchmark: ccapi-suno-mcp's figures beside their targets, in one table.

    uv run python tests/bench/bench.py           # full run: several minutes (it seeds a 100,000-task ledger)
    uv run python tests/bench/bench.py --quick   # CI: few runs, small sizes, still every row (under a minute)

Each row is: what, the figure(s), the target, and the ratio or verdict. Machines are noisy, so every figure is
a median (p95 where asked) and every comparison is against a baseline measured in the same run, interleaved
with it. Nothing here asserts a figure: `tests/test_bench.py` only checks that the quick run prints every row.

How each figure is taken:

1. Start-up: wall time from spawning the `ccapi-suno-mcp` console script (what `uvx ccapi-suno-mcp` runs; with a
   key, an existing empty ledger) to the answer to `tools/list`, beside `floor_server.py` (a bare one-tool
   `MCPServer`, same SDK) spawned the same way, for a client of each protocol era: one of each per round, the
   order swapped every round. The exchange is raw JSON-RPC over the pipes, so that no client library start-up is
   counted: a 2025 client's `initialize`, `notifications/initialized`, `tools/list`, and a 2026-07-28 client's
   `server/discover`, `subscriptions/listen` and `tools/list` as Claude Code sends them. Bytecode is compiled
   first and each command is spawned once, unmeasured, to warm the page cache. A single start-up here varies by
   ±20% from run to run (the same `import mcp` takes 1.2 to 1.8 s), so a full run takes 31 rounds, judges the
   median of the rounds' ratios (each round's pair shares that moment's machine), and also counts the
   instructions each process executes (valgrind's callgrind), a figure that does not vary: the work itself,
   without the machine's noise.
2. Call overhead: `suno_get_task` through the server in memory (`Client(server)`) and over stdio (a subprocess
   of the real command), against the sandbox on a loopback port, beside raw `httpx2` requests to the same
   sandbox. A pending task (it never finishes: `sandbox:stuck`) makes the tool call CCAPI (`POST /suno/fetch`);
   a finished one is answered from the ledger alone. All operations take turns, call by call. The Python
   `mcp.Client` re-validates every structured result against the tool's output schema (pure-Python
   `jsonschema`); that client cost is inside the call times and is also shown on its own.
3. Polling cost: upstream requests (counted by the sandbox) during one `Watcher.poll_once()` with N pending tasks.
4. Ledger scale: `SQLiteLedger.list_tasks(limit=50)` and `get_task` on ledgers of finished two-clip songs,
   seeded through the ledger's own API; the same through the tools in memory; then the resident memory
   (VmRSS) of the real server process over stdio, holding the 10,000-task ledger, after `tools/list` and one
   `suno_list_tasks` call.
5. Completion latency: from the sandbox finishing a task (its `ManualClock` moved past the end) to
   `suno_wait_for_tasks` returning it, at the default poll interval and a short one; the finish comes at a
   random phase of the watcher's cycle. Also the upstream polls made while the wait is pending, and, with no
   waiter, how long the ledger (and so resources and notifications) takes to see the finish.
6. Tool list tokens: the o200k_base tokens of what a client's model sees of `tools/list`.
7. The PostgreSQL ledger beside SQLite, on a throwaway durable cluster (`tests/postgres.py`: Debian's initdb and
   pg_ctl, fsync on) on loopback: `list_tasks(limit=50)` and `get_task` on a ledger of finished songs seeded
   through its API (the size section 4 ends at; SQLite's figure from there beside it); a submit's ledger work
   (`begin_unless_duplicate` then `record_task_id`, one after another) on each backend; and 50 concurrent
   `suno_generate_music` calls split across two in-process replicas on one PostgreSQL ledger, beside 50 on one
   server with SQLite, each against its own sandbox.
8. A song in Claude Code: the model requests and tool calls one 150 s song costs, without MCP tasks (a submit,
   then `suno_wait_for_tasks` of 50 s until it is done, one model turn per result) and with them (one call,
   backgrounded; `tasks/get` polls at `pollIntervalMs`; the finished song starts one more turn), as a scripted
   fake model drives them the way Claude Code does (`reference/mcp-tasks.md`; the TUI itself is in
   `tests/test_claude_code_tasks.py`). The real command over stdio in the 2026-07-28 era, its generation, watcher
   interval and wait limit all scaled 1:50 so the run takes seconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal, TextIO, cast

import anyio
import anyio.to_thread
import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp.types import CallToolResult

from ccapi_suno_mcp.app import create_server
from ccapi_suno_mcp.ccapi import SunoClient, SunoTask
from ccapi_suno_mcp.ledger import PostgresLedger, SQLiteLedger, TaskLedger
from ccapi_suno_mcp.notifications import Notifier
from ccapi_suno_mcp.sandbox import ManualClock, Sandbox, serve_sandbox
from ccapi_suno_mcp.settings import Settings
from ccapi_suno_mcp.watcher import DEFAULT_INTERVAL, Watcher

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the token counter the unit test uses
from postgres import PostgresCluster
from tool_tokens import FULL_BUDGET, VISIBLE_BUDGET, tool_tokens

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parents[1]
PACKAGE = REPO / "server" / "ccapi_suno_mcp"
FLOOR_SERVER = BENCH_DIR / "floor_server.py"
SERVER_COMMAND = (str(Path(sys.executable).with_name("ccapi-suno-mcp")),)
"""The console script, as `uvx ccapi-suno-mcp` and every client configuration run it."""
FLOOR_COMMAND = (sys.executable, str(FLOOR_SERVER))

KEY = "sk-bench-0000000000000001"
PROTOCOL_VERSION = "2025-11-25"  # the newest handshake-era version: what most clients send
MODERN_META: dict[str, Any] = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {"roots": {"listChanged": True}, "elicitation": {"form": {}}},
}
"""What a 2026-07-28 client (Claude Code) puts in every request's `_meta`."""
LIST_CHANGES = ("toolsListChanged", "promptsListChanged", "resourcesListChanged")
Era = Literal["2025", "2026"]
NOWHERE = "http://127.0.0.1:9"
"""CCAPI for the start-up runs: they have a key, but nothing there may reach the network."""
SPAWN_TIMEOUT = 60.0
CALLGRIND_TIMEOUT = 600.0
"""A session under callgrind takes about a minute; ten is a hung one."""
SHORT_INTERVAL = 0.1
LEDGER_POLL_SECONDS = 0.002  # the resolution of the no-waiter latency figure
SETTLE = 0.3
"""Seconds a new wait (or submit) is left to settle before the clock finishes its task."""
CYCLE_WORK = 0.05
"""Slack for the work of one poll cycle (fetch, ledger write, re-read) on top of the interval."""
STARTUP_TARGET = 1.05
MEMORY_TARGET = 1.08
OWN_WORK_TARGET = 0.001
"""The server's own work on a pending suno_get_task over stdio, beyond the floor's ping and a raw fetch."""
RSS_LEDGER_SIZE = 10_000
LEDGER_TARGET_SIZE = 10_000
ROW_KEYS = (
    "1a", "1b", "1c", "2a", "2b", "2c", "2d", "2e", "2f", "3a", "3b", "3c", "3d", "4a", "4b", "4c", "5a", "5b", "5c",
    "5d", "6a", "6b", "7a", "7b", "7c", "8a",
)  # fmt: skip
"""Every row the table prints, in order; `tests/test_bench.py` checks them."""

MUSIC = "suno_generate_music"
MOODS = ("calm", "bright", "dark", "dreamy", "angry", "tender", "restless")
GENRES = ("indie pop", "synthwave", "folk", "drum and bass", "bossa nova", "grunge", "lo-fi hip hop", "gospel")
TOPICS = ("rain", "a night train", "the sea", "leaving home", "a lighthouse", "city lights", "old friends")


@dataclass(frozen=True)
class Plan:
    """How much of everything to measure."""

    name: str
    startup_runs: int
    calls: int
    pending_counts: tuple[int, ...]
    ledger_sizes: tuple[int, int]
    ledger_reads: int
    completion_runs: int
    postgres_size: int
    postgres_api_seeded: int
    """Songs seeded into the PostgreSQL ledger through its API; the rest of it are SQL copies of them."""

    @classmethod
    def full(cls) -> Plan:
        return cls("full", 31, 400, (1, 10, 100, 1_000), (10_000, 100_000), 40, 5, 100_000, 2_000)

    @classmethod
    def quick(cls) -> Plan:
        return cls("quick", 2, 40, (1, 10, 100, 1_000), (1_000, 10_000), 8, 2, 10_000, 500)


@dataclass(frozen=True)
class Row:
    key: str
    what: str
    figures: str
    target: str
    verdict: str


# -- numbers ----------------------------------------------------------------------------------------------


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def p95(samples: Sequence[float]) -> float:
    """The 95th percentile by nearest rank."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    value = seconds * 1000
    if value < 10:
        return f"{value:.2f} ms"
    if value < 100:
        return f"{value:.1f} ms"
    return f"{value:.0f} ms"


def meets(ok: bool) -> str:
    return "meets" if ok else "MISSES"


async def timed(operation: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await operation()
    return time.perf_counter() - started


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def server_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment a client would give the server: ours without CCAPI_*, plus a home and `extra`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CCAPI_")}
    env["CCAPI_SUNO_HOME"] = str(home)
    env.update(extra)
    return env


def song_body(index: int) -> dict[str, Any]:
    description = (
        f"a {MOODS[index % len(MOODS)]} {GENRES[index % len(GENRES)]} song about {TOPICS[index % len(TOPICS)]} "
        f"(#{index})"
    )
    return {"custom_mode": False, "gpt_description_prompt": description, "mv": "chirp-v5"}


# -- a server over raw JSON-RPC stdio ---------------------------------------------------------------------


class RawStdioServer:
    """A server process spoken to in raw JSON-RPC lines, with no MCP client library in the way."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str], *, timeout: float = SPAWN_TIMEOUT) -> None:
        self.spawned_at = time.perf_counter()
        self.process = subprocess.Popen(
            list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=dict(env)
        )
        self._watchdog = threading.Timer(timeout, self.process.kill)  # a hung server cannot hang the bench
        self._watchdog.daemon = True
        self._watchdog.start()
        self._next_id = 0

    def _send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a request and read lines until its answer.

        Raises:
            RuntimeError: the server closed its output or answered with an error.
        """
        self._next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            message["params"] = params
        self._send(message)
        assert self.process.stdout is not None
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"{method}: the server closed its output (exit code {self.process.poll()})")
            answer = cast(dict[str, Any], json.loads(line))
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return cast(dict[str, Any], answer["result"])

    def notify(self, method: str) -> None:
        self._send({"jsonrpc": "2.0", "method": method})

    def start_session(self, era: Era = "2025") -> tuple[float, float, int]:
        """A client's first exchange, as a client of that era sends it, to the answer to `tools/list`.

        2025: `initialize`, `notifications/initialized`, `tools/list`. 2026-07-28 (as Claude Code sends it):
        `server/discover`, then `subscriptions/listen` (left open) and `tools/list`, each with the era's `_meta`.
        Returns the seconds from spawn to the first answer and to the tools/list answer, and the tool count.

        Raises:
            RuntimeError: the server closed its output or answered with an error.
        """
        if era == "2025":
            client = {"name": "bench", "version": "0"}
            self.request("initialize", {"protocolVersion": PROTOCOL_VERSION, "capabilities": {}, "clientInfo": client})
            first = time.perf_counter() - self.spawned_at
            self.notify("notifications/initialized")
            tools = cast(list[Any], self.request("tools/list")["tools"])
            return first, time.perf_counter() - self.spawned_at, len(tools)
        self.request("server/discover", {"_meta": MODERN_META})
        first = time.perf_counter() - self.spawned_at
        self._next_id += 1
        listen: dict[str, Any] = {"_meta": MODERN_META, "notifications": dict.fromkeys(LIST_CHANGES, True)}
        self._send(
            {"jsonrpc": "2.0", "id": f"listen:{self._next_id}", "method": "subscriptions/listen", "params": listen}
        )
        tools = cast(list[Any], self.request("tools/list", {"_meta": MODERN_META})["tools"])
        return first, time.perf_counter() - self.spawned_at, len(tools)

    def cpu_seconds(self) -> float:
        """CPU time the process has used so far, all its threads (/proc/<pid>/task/*/schedstat, in ns)."""
        total = 0
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except FileNotFoundError:  # a thread that just ended
                continue
        return total / 1e9

    def memory_mb(self) -> tuple[float, float]:
        """Resident memory now (VmRSS) and at its peak (VmHWM), in MB, from /proc/<pid>/status."""
        fields: dict[str, float] = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0]) / 1024  # kB
        return fields["VmRSS"], fields["VmHWM"]

    def close(self, timeout: float = 10) -> None:
        """Close stdin (the server's cue to exit); kill it if it lingers `timeout` seconds."""
        self._watchdog.cancel()
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def compile_bytecode() -> str:
    """Compile the package, the bench and the environment's packages, as an installed (wheel) server would be."""
    site = Path(sysconfig.get_paths()["purelib"])
    command = [sys.executable, "-m", "compileall", "-q", "-j", "0", str(PACKAGE), str(BENCH_DIR), str(site)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return f"python -m compileall -q {PACKAGE.relative_to(REPO)} {BENCH_DIR.relative_to(REPO)} {site}"


# -- 1. start-up ------------------------------------------------------------------------------------------


def startup_rows(plan: Plan, tmp: Path) -> list[Row]:
    home = tmp / "startup"
    env = server_env(home, CCAPI_API_KEY=KEY, CCAPI_BASE_URL=NOWHERE)  # with a key, as users run it
    eras: tuple[Era, ...] = ("2025", "2026")
    commands = (("server", SERVER_COMMAND), ("floor", FLOOR_COMMAND))
    times: dict[tuple[str, Era], list[float]] = {}
    cpu: dict[tuple[str, Era], list[float]] = {}
    rss: dict[str, list[float]] = {"server": [], "floor": []}
    first_answer: dict[Era, list[float]] = {era: [] for era in eras}
    tool_count = 0
    for run in range(plan.startup_runs + 1):  # run 0 warms the page cache and creates the ledger
        for era in eras:
            for name, command in commands if run % 2 else commands[::-1]:  # neither always goes first
                process = RawStdioServer(command, env)
                try:
                    to_first, to_tools, count = process.start_session(era)
                    used = process.cpu_seconds()
                    resident, _ = process.memory_mb()
                finally:
                    process.close()
                if run:
                    times.setdefault((name, era), []).append(to_tools)
                    cpu.setdefault((name, era), []).append(used)
                    if era == "2025":
                        rss[name].append(resident)
                    if name == "server":
                        first_answer[era].append(to_first)
                        tool_count = count
    instructions = instruction_counts(env, eras) if plan.name == "full" else None
    rows: list[Row] = []
    labels: tuple[tuple[str, Era, str], ...] = (("1a", "2025", "initialize"), ("1b", "2026", "server/discover"))
    for key, era, handshake in labels:
        server, floor = median(times[("server", era)]), median(times[("floor", era)])
        server_cpu, floor_cpu = median(cpu[("server", era)]), median(cpu[("floor", era)])
        # Each round starts the two back to back, so its ratio shares that moment's machine; the median of the
        # rounds' ratios is the verdict (slow spells lasting several starts move the medians of each alone).
        ratios = [a / b for a, b in zip(times[("server", era)], times[("floor", era)], strict=True)]
        ratio, (low, high) = median(ratios), quartiles(ratios)
        rows.append(
            Row(
                key,
                f"start-up over stdio, {era} client ({handshake}), with a key: spawn → tools/list answered",
                f"server {ms(server)} ({handshake} answered at {ms(median(first_answer[era]))}; {tool_count} tools), "
                f"floor {ms(floor)} (medians: {server / floor:.2f} ×); {plan.startup_runs} rounds, each round's "
                f"ratio: median {ratio:.2f}, quartiles {low:.2f}–{high:.2f}; CPU time {ms(server_cpu)} vs "
                f"{ms(floor_cpu)} ({server_cpu / floor_cpu:.2f} ×); {_instructions_figure(instructions, era)}",
                f"≤ {STARTUP_TARGET:.2f} × floor",
                f"{ratio:.2f} × floor: {meets(ratio <= STARTUP_TARGET)}",
            )
        )
    server_rss, floor_rss = median(rss["server"]), median(rss["floor"])
    rows.append(
        Row(
            "1c",
            "resident memory right after tools/list",
            f"server VmRSS {server_rss:.1f} MB, floor {floor_rss:.1f} MB; median of {plan.startup_runs}",
            f"≤ {MEMORY_TARGET:.2f} × floor",
            f"{server_rss / floor_rss:.2f} × floor: {meets(server_rss / floor_rss <= MEMORY_TARGET)}",
        )
    )
    return rows


def quartiles(samples: Sequence[float]) -> tuple[float, float]:
    """The first and third quartiles."""
    first, _, third = statistics.quantiles(samples, n=4)
    return first, third


Counts = dict[tuple[str, Era], int] | str
"""Instructions per (command, era), or why they were not counted."""


def instruction_counts(env: Mapping[str, str], eras: Sequence[Era]) -> Counts:
    """The instructions each command executes for one session of each era, from exec to its exit at the end of
    its input, counted by valgrind's callgrind: the same every run (within 0.1%), where wall time varies by 20%.

    Callgrind runs a process some 40 times slower, so the sessions run two at a time, one per CPU.
    """
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return "instructions not counted: valgrind is not installed (apt-get install valgrind)"
    jobs = [(name, command, era) for era in eras for name, command in (("server", SERVER_COMMAND),
                                                                       ("floor", FLOOR_COMMAND))]  # fmt: skip

    def count(job: tuple[str, Sequence[str], Era]) -> tuple[tuple[str, Era], int]:
        name, command, era = job
        out = Path(env["CCAPI_SUNO_HOME"]).parent / f"callgrind.{name}.{era}"
        prefix = [valgrind, "--tool=callgrind", f"--callgrind-out-file={out}"]
        process = RawStdioServer([*prefix, *command], env, timeout=CALLGRIND_TIMEOUT)
        try:
            process.start_session(era)
        finally:
            process.close(timeout=CALLGRIND_TIMEOUT)
        totals = [line for line in out.read_text().splitlines() if line.startswith("totals:")]
        return (name, era), int(totals[0].split()[1])

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return dict(pool.map(count, jobs))


def _instructions_figure(counts: Counts | None, era: Era) -> str:
    if counts is None:
        return "instructions counted in a full run only"
    if isinstance(counts, str):
        return counts
    server, floor = counts[("server", era)], counts[("floor", era)]
    return f"instructions (callgrind) {server / 1e9:.3f} G vs {floor / 1e9:.3f} G ({server / floor:.3f} ×)"


# -- 2. call overhead ---------------------------------------------------------------------------------------


async def _submit_song(client: Client, description: str) -> str:
    result = await client.call_tool(MUSIC, {"description": description})
    return _structured(result, MUSIC)["task_id"]


def _structured(result: CallToolResult, tool: str) -> dict[str, Any]:
    if result.is_error or result.structured_content is None:
        raise RuntimeError(f"{tool} failed: {result.content}")
    return result.structured_content


async def _get_task(client: Client, task_id: str) -> dict[str, Any]:
    return _structured(await client.call_tool("suno_get_task", {"task_id": task_id}), "suno_get_task")


async def _client_validation(client: Client, tool: str, arguments: dict[str, Any], runs: int) -> float:
    """Median seconds `mcp.Client` spends re-validating this call's result against the tool's output schema.

    The Python client does it on every call, with the pure-Python `jsonschema`; it is client cost, not server.
    """
    result = await client.call_tool(tool, arguments)
    _structured(result, tool)
    return median([await timed(lambda: client.session.validate_tool_result(tool, result)) for _ in range(runs)])


async def call_overhead_rows(plan: Plan, tmp: Path, errlog: TextIO) -> list[Row]:
    from floor_server import server as floor  # the same bare one-tool server the start-up row spawns

    clock = ManualClock()
    sandbox = Sandbox(clock=clock)
    async with AsyncExitStack() as stack:
        origin = await stack.enter_async_context(serve_sandbox(sandbox))
        raw = await stack.enter_async_context(httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}))
        # A long poll interval keeps the in-memory server's watcher out of the timings.
        server = create_server(Settings(api_key=KEY, base_url=origin, home=tmp / "calls-memory"), poll_interval=3600)
        memory = await stack.enter_async_context(Client(server))
        stdio_env = server_env(tmp / "calls-stdio", CCAPI_API_KEY=KEY, CCAPI_BASE_URL=origin)
        parameters = StdioServerParameters(command=SERVER_COMMAND[0], args=list(SERVER_COMMAND[1:]), env=stdio_env)
        stdio = await stack.enter_async_context(Client(stdio_client(parameters, errlog=errlog)))
        sdk_floor = await stack.enter_async_context(Client(floor))
        floor_parameters = StdioServerParameters(command=FLOOR_COMMAND[0], args=list(FLOOR_COMMAND[1:]))
        stdio_floor = await stack.enter_async_context(Client(stdio_client(floor_parameters, errlog=errlog)))

        pending = {"memory": await _submit_song(memory, "a song that never ends sandbox:stuck")}
        pending["stdio"] = await _submit_song(stdio, "another song that never ends sandbox:stuck")
        finished = {"memory": await _submit_song(memory, "a short calm piano piece")}
        finished["stdio"] = await _submit_song(stdio, "a short bright piano piece")
        clock.advance(60)
        for where, client in (("memory", memory), ("stdio", stdio)):
            if (await _get_task(client, finished[where]))["status"] != "SUCCESS":
                raise RuntimeError("the finished task did not finish")
            if (await _get_task(client, pending[where]))["status"] in ("SUCCESS", "FAILURE"):
                raise RuntimeError("the pending task finished")

        async def raw_get() -> None:
            (await raw.get(f"{origin}/suno/fetch/{pending['memory']}")).raise_for_status()

        async def raw_post() -> None:
            (await raw.post(f"{origin}/suno/fetch", json={"ids": [pending["memory"]]})).raise_for_status()

        async def ping() -> None:
            _ = await sdk_floor.call_tool("ping", {})

        async def stdio_ping() -> None:
            _ = await stdio_floor.call_tool("ping", {})

        operations: dict[str, Callable[[], Awaitable[object]]] = {
            "raw GET": raw_get,
            "raw POST": raw_post,
            "floor ping": ping,
            "stdio floor ping": stdio_ping,
            "memory pending": lambda: _get_task(memory, pending["memory"]),
            "memory finished": lambda: _get_task(memory, finished["memory"]),
            "stdio pending": lambda: _get_task(stdio, pending["stdio"]),
            "stdio finished": lambda: _get_task(stdio, finished["stdio"]),
        }
        samples: dict[str, list[float]] = {name: [] for name in operations}
        upstream: dict[str, int] = dict.fromkeys(operations, 0)
        warmup = max(5, plan.calls // 10)
        for call in range(warmup + plan.calls):
            for name, operation in operations.items():
                before = sandbox.stats.requests
                elapsed = await timed(operation)
                if call >= warmup:
                    samples[name].append(elapsed)
                    upstream[name] += sandbox.stats.requests - before
        validation = {
            state: await _client_validation(memory, "suno_get_task", {"task_id": task_ids["memory"]}, plan.calls)
            for state, task_ids in (("pending", pending), ("finished", finished))
        }

    def p50(name: str) -> float:
        return median(samples[name])

    def figures(name: str) -> str:
        return f"p50 {ms(p50(name))}, p95 {ms(p95(samples[name]))}, {upstream[name] / plan.calls:.2f} upstream req/call"

    get, post = p50("raw GET"), p50("raw POST")
    rows = [
        Row(
            "2a",
            f"baseline: raw httpx2 to the sandbox, N={plan.calls}",
            f"GET /suno/fetch/{{id}} p50 {ms(get)}, p95 {ms(p95(samples['raw GET']))}; POST /suno/fetch p50 "
            f"{ms(post)}; SDK floor (ping tool) p50 {ms(p50('floor ping'))} in memory, "
            f"{ms(p50('stdio floor ping'))} over stdio",
            "(baseline)",
            "-",
        )
    ]
    for pending_key, finished_key, where, label in (
        ("2b", "2c", "memory", "in memory"),
        ("2d", "2e", "stdio", "over stdio"),
    ):
        added = p50(f"{where} pending") - get
        target = "≤ 2 ms added at p50" if where == "memory" else "(info)"
        rows.append(
            Row(
                pending_key,
                f"suno_get_task, PENDING task (calls CCAPI), {label}",
                f"{figures(f'{where} pending')}; added p50 {ms(added)} vs raw GET "
                f"({ms(p50(f'{where} pending') - post)} vs POST; client validation {ms(validation['pending'])})",
                target,
                meets(added <= 0.002) if where == "memory" else f"+{ms(added)}",
            )
        )
        total = p50(f"{where} finished")
        rows.append(
            Row(
                finished_key,
                f"suno_get_task, FINISHED task (ledger only, no CCAPI), {label}",
                f"{figures(f'{where} finished')}; all of it added (client validation {ms(validation['finished'])})",
                target,
                meets(total <= 0.002) if where == "memory" else f"+{ms(total)}",
            )
        )
    own = p50("stdio pending") - p50("stdio floor ping") - post
    rows.append(
        Row(
            "2f",
            "server's own work on a PENDING suno_get_task over stdio",
            f"stdio pending p50 {ms(p50('stdio pending'))} − floor ping over stdio {ms(p50('stdio floor ping'))} "
            f"− raw POST /suno/fetch {ms(post)} = {ms(own)}",
            f"≤ {ms(OWN_WORK_TARGET)}",
            meets(own <= OWN_WORK_TARGET),
        )
    )
    return rows


# -- 3. polling cost ----------------------------------------------------------------------------------------


async def polling_rows(plan: Plan, tmp: Path) -> list[Row]:
    rows: list[Row] = []
    sandbox = Sandbox(clock=ManualClock())  # the clock never moves: every task stays pending
    async with AsyncExitStack() as stack:
        origin = await stack.enter_async_context(serve_sandbox(sandbox))
        client = await stack.enter_async_context(SunoClient(api_key=KEY, base_url=origin))
        ledger = await stack.enter_async_context(await SQLiteLedger.open(tmp / "polling.sqlite3"))
        submitted = 0
        for index, count in enumerate(plan.pending_counts):
            # As an action tool does: record the submission, submit, record the task id.
            while submitted < count:
                body = {"prompt": f"verses about {TOPICS[submitted % len(TOPICS)]} (#{submitted})"}
                record = await ledger.begin_submission(tool="suno_generate_lyrics", action="LYRICS", body=body)
                await ledger.record_task_id(record.submission_id, await client.submit("LYRICS", body))
                submitted += 1
            watcher = Watcher(client, ledger, Notifier(InMemorySubscriptionBus()))
            before = (sandbox.stats.requests, sandbox.stats.fetch_batch)
            elapsed = await timed(watcher.poll_once)
            requests = sandbox.stats.requests - before[0]
            batches = sandbox.stats.fetch_batch - before[1]
            expected = math.ceil(count / 100)
            rows.append(
                Row(
                    f"3{'abcd'[index]}",
                    f"polling: upstream requests in one watcher cycle, {count:,} pending",
                    f"{requests} request(s) ({batches} × POST /suno/fetch); poll_once {ms(elapsed)}",
                    f"⌈N/100⌉ = {expected}",
                    meets(requests <= expected),
                )
            )
    return rows


# -- 4. ledger scale and memory -------------------------------------------------------------------------------


async def _song_template() -> SunoTask:
    """A finished two-clip song as CCAPI (the sandbox) returns it."""
    clock = ManualClock()
    async with serve_sandbox(Sandbox(clock=clock)) as origin, SunoClient(api_key=KEY, base_url=origin) as client:
        task_id = await client.submit("MUSIC", song_body(0))
        clock.advance(600)
        return await client.fetch_task(task_id)


async def _seed(ledger: TaskLedger, template: SunoTask, start: int, stop: int) -> None:
    """Songs `start`..`stop - 1`, each submitted, given a task id and finished, through the ledger's API."""
    workers = 16  # the ledger runs one call at a time; several callers keep its thread busy

    async def seed_one(index: int) -> None:
        body = song_body(index)
        record = await ledger.begin_submission(tool=MUSIC, action="MUSIC", body=body)
        task_id = f"task_bench{index:027d}"
        await ledger.record_task_id(record.submission_id, task_id)
        data = json.loads(json.dumps(template.data))
        for position, clip in enumerate(data["clips"]):
            clip["clip_id"] = f"{index:08d}-0000-4000-8000-{position:012d}"
            clip["title"] = f"{TOPICS[index % len(TOPICS)].capitalize()} #{index}"
        await ledger.apply_update(template.model_copy(update={"task_id": task_id, "data": data}))

    async def worker(first: int) -> None:
        for index in range(first, stop, workers):
            await seed_one(index)

    async with anyio.create_task_group() as task_group:
        for first in range(start, min(stop, start + workers)):
            task_group.start_soon(worker, first)


async def _ledger_figures(plan: Plan, ledger: TaskLedger, size: int, home: Path) -> tuple[float, float, str]:
    """Median seconds of list_tasks(limit=50) and get_task, and the same through the tools, as text."""
    rng = random.Random(size)
    page = await ledger.list_tasks(limit=50)
    assert len(page.tasks) == 50
    ids = [f"task_bench{rng.randrange(size):027d}" for _ in range(plan.ledger_reads)]
    listing = [await timed(lambda: ledger.list_tasks(limit=50)) for _ in range(plan.ledger_reads)]
    reading = [await timed(lambda task_id=task_id: ledger.get_task(task_id)) for task_id in ids]
    server = create_server(Settings(api_key=None, home=home), ledger=ledger)
    async with Client(server) as client:
        list_args = {"limit": 50}
        _structured(await client.call_tool("suno_list_tasks", list_args), "suno_list_tasks")  # warm-up
        tool_listing = [await timed(lambda: client.call_tool("suno_list_tasks", list_args)) for _ in ids]
        tool_reading = [await timed(lambda task_id=task_id: _get_task(client, task_id)) for task_id in ids]
        validation = await _client_validation(client, "suno_list_tasks", list_args, plan.ledger_reads)
    tools = (
        f"tools in memory: suno_list_tasks(limit=50) {ms(median(tool_listing))} (client validation {ms(validation)}), "
        f"suno_get_task {ms(median(tool_reading))}"
    )
    return median(listing), median(reading), tools


def _server_memory(home: Path) -> tuple[float, float]:
    process = RawStdioServer(SERVER_COMMAND, server_env(home))
    try:
        process.start_session()
        process.request("tools/call", {"name": "suno_list_tasks", "arguments": {}})
        return process.memory_mb()
    finally:
        process.close()


def _floor_memory(home: Path) -> tuple[float, float]:
    process = RawStdioServer(FLOOR_COMMAND, server_env(home))
    try:
        process.start_session()
        process.request("tools/call", {"name": "ping", "arguments": {}})
        return process.memory_mb()
    finally:
        process.close()


async def ledger_rows(plan: Plan, tmp: Path) -> list[Row]:
    template = await _song_template()
    rows: list[Row] = []
    home = tmp / "ledger-a"
    seeded = 0
    ledger = await SQLiteLedger.open(home / "ledger.sqlite3")
    try:
        for index, size in enumerate(plan.ledger_sizes):
            progress(f"seeding the ledger to {size:,} tasks")
            started = time.perf_counter()
            await _seed(ledger, template, seeded, size)
            rate = (size - seeded) / (time.perf_counter() - started)
            seeded = size
            if await ledger.count_tasks() != size:
                raise RuntimeError("the ledger does not hold the seeded tasks")
            listed, read, tools = await _ledger_figures(plan, ledger, size, tmp / "ledger-tools")
            SQLITE_SCALE[size] = (listed, read)
            slowest = max(listed, read)
            if size == LEDGER_TARGET_SIZE:
                target, verdict = "≤ 20 ms", meets(slowest <= 0.020)
            else:
                target, verdict = "(target is at 10,000)", "-"
            rows.append(
                Row(
                    f"4{'ab'[index]}",
                    f"ledger of {size:,} finished songs: list 50 newest / read one",
                    f"ledger API: list_tasks(limit=50) {ms(listed)}, get_task {ms(read)}; {tools}; "
                    f"median of {plan.ledger_reads}; seeded {rate:,.0f} tasks/s",
                    target,
                    verdict,
                )
            )
            if size == RSS_LEDGER_SIZE:
                await ledger.aclose()
                progress("measuring the server's resident memory")
                rss, peak = await anyio.to_thread.run_sync(_server_memory, home)
                empty_rss, _ = await anyio.to_thread.run_sync(_server_memory, tmp / "empty-home")
                floor_rss, _ = await anyio.to_thread.run_sync(_floor_memory, tmp / "floor-home")
                rows.append(
                    Row(
                        "4c",
                        f"server RSS over stdio, {size:,}-task ledger, after tools/list + suno_list_tasks",
                        f"VmRSS {rss:.1f} MB (peak {peak:.1f} MB); with an empty ledger {empty_rss:.1f} MB; "
                        f"floor server {floor_rss:.1f} MB",
                        "≤ 80 MB",
                        meets(rss <= 80),
                    )
                )
                if index + 1 < len(plan.ledger_sizes):  # grow a copy; the server just read this one
                    shutil.copytree(home, tmp / "ledger-b")
                    home = tmp / "ledger-b"
                ledger = await SQLiteLedger.open(home / "ledger.sqlite3")
    finally:
        await ledger.aclose()
    return rows


SQLITE_SCALE: dict[int, tuple[float, float]] = {}
"""Section 4's SQLite figures (list 50 newest, read one) by ledger size, for section 7 to show beside its own."""


# -- 5. completion latency ----------------------------------------------------------------------------------


@dataclass
class Completion:
    latencies: list[float]
    """Seconds from the finish to what was measured: the wait returning, or the ledger showing it."""
    polls: int
    """Upstream polls counted in the windows before each finish."""
    window: float
    """Seconds those windows lasted."""


async def _completion(plan: Plan, tmp: Path, interval: float, *, waiter: bool) -> Completion:
    """Finish `plan.completion_runs` songs one by one at a random phase of the watcher's cycle.

    With `waiter`, each finish is timed to `suno_wait_for_tasks` returning; without, to the ledger showing it.
    """
    name = f"completion-{interval:g}-{'wait' if waiter else 'ledger'}"
    rng = random.Random(name)
    clock = ManualClock()
    sandbox = Sandbox(clock=clock)
    result = Completion([], 0, 0.0)
    async with AsyncExitStack() as stack:
        origin = await stack.enter_async_context(serve_sandbox(sandbox))
        ledger = await stack.enter_async_context(await SQLiteLedger.open(tmp / name / "ledger.sqlite3"))
        settings = Settings(api_key=KEY, base_url=origin, home=tmp / name)
        client = await stack.enter_async_context(Client(create_server(settings, ledger=ledger, poll_interval=interval)))
        for run in range(plan.completion_runs):
            task_id = await _submit_song(client, f"{name} run {run}")
            returned: list[float] = []

            async def wait(task_id: str = task_id, returned: list[float] = returned) -> None:
                arguments = {"task_ids": [task_id], "timeout_seconds": 120}
                answer = _structured(await client.call_tool("suno_wait_for_tasks", arguments), "wait")
                returned.append(time.perf_counter())
                if not answer["all_done"]:
                    raise RuntimeError("the wait timed out")

            finished_at = math.nan
            async with anyio.create_task_group() as task_group:
                if waiter:
                    task_group.start_soon(wait)
                await anyio.sleep(SETTLE)  # past the submit's poll, and the wait's own fetch and the poll it wakes
                polls_before, window_started = sandbox.stats.fetch_batch, time.perf_counter()
                await anyio.sleep(rng.uniform(0, interval))  # finish at a random phase of the watcher's cycle
                result.polls += sandbox.stats.fetch_batch - polls_before
                finished_at = time.perf_counter()
                result.window += finished_at - window_started
                clock.advance(60)
                if not waiter:
                    # Look from outside, as any other reader of the ledger would: poll it finely, with a deadline.
                    with anyio.fail_after(interval * 3 + 10):
                        while (record := await ledger.get_task(task_id)) is None or record.status != "SUCCESS":  # noqa: ASYNC110
                            await anyio.sleep(LEDGER_POLL_SECONDS)
                    returned.append(time.perf_counter())
            result.latencies.append(returned[0] - finished_at)
    return result


async def completion_rows(plan: Plan, tmp: Path) -> list[Row]:
    measured: dict[str, Completion] = {}

    async def measure(name: str, interval: float, *, waiter: bool) -> None:
        measured[name] = await _completion(plan, tmp, interval, waiter=waiter)

    # The two slow measurements run side by side, each with its own sandbox and server; the fast one after.
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(partial(measure, "5a", DEFAULT_INTERVAL, waiter=True))
        task_group.start_soon(partial(measure, "5d", DEFAULT_INTERVAL, waiter=False))
    await measure("5b", SHORT_INTERVAL, waiter=True)
    rows: list[Row] = []
    for key, interval in (("5a", DEFAULT_INTERVAL), ("5b", SHORT_INTERVAL)):
        latencies = measured[key].latencies
        rows.append(
            Row(
                key,
                f"completion → suno_wait_for_tasks returns, poll interval {interval:g} s",
                f"median {ms(median(latencies))}, max {ms(max(latencies))} ({plan.completion_runs} runs, random phase)",
                f"≤ interval + {ms(CYCLE_WORK)} (one cycle's work)",
                meets(max(latencies) <= interval + CYCLE_WORK),
            )
        )
    waiting = measured["5a"]
    rate = waiting.polls / waiting.window
    rows.append(
        Row(
            "5c",
            f"upstream polls while one suno_wait_for_tasks is pending, interval {DEFAULT_INTERVAL:g} s",
            f"{rate:,.2f} POST /suno/fetch per second ({waiting.polls:,} in {waiting.window:.1f} s of waiting, 1 task)",
            f"≤ 1 per interval ({1 / DEFAULT_INTERVAL:g}/s)",
            # Each run's window is shorter than one interval, so a watcher on its interval polls at most once in it.
            f"{rate * DEFAULT_INTERVAL:,.1f} × target: {meets(waiting.polls <= plan.completion_runs)}",
        )
    )
    unwatched = measured["5d"].latencies
    rows.append(
        Row(
            "5d",
            f"completion → ledger updated, no waiter (resources, notifications), interval {DEFAULT_INTERVAL:g} s",
            f"median {ms(median(unwatched))}, max {ms(max(unwatched))} ({plan.completion_runs} runs, random phase)",
            f"≤ interval + {ms(CYCLE_WORK)}",
            meets(max(unwatched) <= DEFAULT_INTERVAL + CYCLE_WORK),
        )
    )
    return rows


# -- the table ----------------------------------------------------------------------------------------------


# -- 6. tool list tokens -------------------------------------------------------------------------------------

PEERS = (
    ("this server before the lean list", 28, 30_326, 14_656),
    ("AceDataCloud mcp-suno", 42, 14_261, 12_792),
    ("Kie.ai MCP", 10, 1_996, 1_631),
)
"""o200k_base tokens of compact tools/list JSON, as measured side by side on 2026-12-01 (issue 10)."""
TOKEN_DETAILS: list[str] = []


async def _listed(server: Any) -> list[Any]:
    async with Client(server) as client:
        return list((await client.list_tools()).tools)


async def token_rows(tmp: Path) -> list[Row]:
    from floor_server import server as floor

    tools = await _listed(create_server(Settings(home=tmp / "tokens")))
    per_tool, visible, full = tool_tokens(tools)
    _, floor_visible, floor_full = tool_tokens(await _listed(floor))
    TOKEN_DETAILS[:] = [
        f"| {row.name} | {row.visible} | {row.output} | {row.full} |" for row in sorted(per_tool, key=lambda r: -r.full)
    ]
    peers = "; ".join(f"{name}: {full_:,} / {visible_:,} ({count} tools)" for name, count, full_, visible_ in PEERS)
    return [
        Row(
            "6a",
            f"model-visible tokens (name + description + inputSchema), {len(tools)} tools, all toolsets",
            f"{visible:,} in all, {visible / len(tools):.0f} per tool; floor (one ping tool) {floor_visible}; "
            f"peers (full / visible): {peers}",
            f"≤ {VISIBLE_BUDGET:,}",
            meets(visible <= VISIBLE_BUDGET),
        ),
        Row(
            "6b",
            "the whole tools/list answer, compact JSON",
            f"{full:,} tokens ({full / len(tools):.0f} per tool; output schemas "
            f"{sum(row.output for row in per_tool):,}); floor {floor_full}",
            f"≤ {FULL_BUDGET:,}",
            meets(full <= FULL_BUDGET),
        ),
    ]


# -- 7. the PostgreSQL ledger ---------------------------------------------------------------------------------


async def _submit_work(ledger: TaskLedger, runs: int) -> list[float]:
    """Seconds of one submit's ledger work, each: the duplicate check and claim, then the task id recorded."""

    async def submit(index: int) -> None:
        record, _ = await ledger.begin_unless_duplicate(tool=MUSIC, action="MUSIC", body=song_body(10_000_000 + index))
        await ledger.record_task_id(record.submission_id, f"task_submit{index:026d}")

    await submit(-1)  # warm-up: connections opened, statements prepared
    return [await timed(lambda index=index: submit(index)) for index in range(runs)]


async def _concurrent_submits(urls: Sequence[str | None], tmp: Path, calls: int) -> tuple[float, float, int]:
    """`calls` concurrent generations split across one server per entry of `urls` (None: SQLite in its home).

    Returns the wall time of the burst, the median call, and how many distinct tasks every server lists.
    """
    durations: list[float] = []
    task_ids: set[str] = set()
    async with AsyncExitStack() as stack:
        origin = await stack.enter_async_context(serve_sandbox(Sandbox(clock=ManualClock())))
        clients: list[Client] = []
        for index, url in enumerate(urls):
            settings = Settings(api_key=KEY, base_url=origin, home=tmp / f"burst-{len(urls)}-{index}", ledger_url=url)
            clients.append(await stack.enter_async_context(Client(create_server(settings))))
        for client in clients:
            await _submit_song(client, f"warm-up of a replica {id(client)}")

        async def generate(number: int) -> None:
            started = time.perf_counter()
            task_ids.add(await _submit_song(clients[number % len(clients)], f"burst song number {number}"))
            durations.append(time.perf_counter() - started)

        started = time.perf_counter()
        async with anyio.create_task_group() as task_group:
            for number in range(calls):
                task_group.start_soon(generate, number)
        wall = time.perf_counter() - started
        seen: list[set[str]] = []
        for client in clients:
            page = _structured(await client.call_tool("suno_list_tasks", {"limit": 100}), "suno_list_tasks")
            seen.append({task["task_id"] for task in page["tasks"]})
    listed = len(task_ids.intersection(*seen))
    return wall, median(durations), listed


def _await_commits(url: str, awaited: bool) -> None:
    """Whether the database's commits wait for the disk, for the connections opened from now on."""
    import psycopg
    from psycopg import sql

    change = "RESET synchronous_commit" if awaited else "SET synchronous_commit = off"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            sql.SQL("ALTER DATABASE {} {}").format(sql.Identifier(url.rsplit("/", 1)[1]), sql.SQL(change))
        )


def _clone_songs(url: str, seeded: int, size: int) -> None:
    """Grow a ledger of `seeded` songs (`_seed`'s ids) to `size` with copies of them, newest last: the same rows
    with ids of their own, as `_seed` would have written them, in a few statements instead of hours of calls."""
    import psycopg

    if size <= seeded:
        return
    task = "'task_bench' || lpad(i::text, 27, '0')"
    source = f"t.task_id = 'task_bench' || lpad((i % {seeded})::text, 27, '0')"
    clip = "lpad(i::text, 8, '0') || substr(c.clip_id, 9)"
    statements = [
        "INSERT INTO tasks (submission_id, task_id, tool, action, request, fingerprint, state, status, progress, "
        "fail_reason, error, title, result_url, result, parent_task_id, parent_clip_id, created_at, updated_at, "
        "finished_at, search_text, owner, principal) "
        f"SELECT md5('copy' || i), {task}, t.tool, t.action, t.request, md5('fingerprint' || i), t.state, t.status, "
        "t.progress, t.fail_reason, t.error, t.title, t.result_url, t.result, t.parent_task_id, t.parent_clip_id, "
        "top.at + i * 0.001, top.at + i * 0.001, top.at + i * 0.001, t.search_text, t.owner, t.principal "
        f"FROM generate_series({seeded}, {size - 1}) AS i JOIN tasks t ON {source} "
        "CROSS JOIN (SELECT max(created_at) AS at FROM tasks) top ORDER BY i",
        "INSERT INTO clips (clip_id, task_id, position, title, tags, lyrics, audio_url, video_url, image_url, state, "
        f"duration, created_at, raw, seen_at) SELECT {clip}, {task}, c.position, c.title, c.tags, c.lyrics, "
        f"c.audio_url, c.video_url, c.image_url, c.state, c.duration, c.created_at, replace(c.raw, c.clip_id, {clip}), "
        f"c.seen_at FROM generate_series({seeded}, {size - 1}) AS i JOIN tasks t ON {source} "
        "JOIN clips c ON c.task_id = t.task_id ORDER BY i, c.position",
        "INSERT INTO status_history (submission_id, status, progress, at) "
        "SELECT md5('copy' || i), h.status, h.progress, h.at "
        f"FROM generate_series({seeded}, {size - 1}) AS i JOIN tasks t ON {source} "
        "JOIN status_history h ON h.submission_id = t.submission_id ORDER BY i, h.id",
    ]
    with psycopg.connect(url) as connection:  # one transaction
        for statement in statements:
            connection.execute(cast(Any, statement))


def _analyze(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("ANALYZE")


async def postgres_rows(plan: Plan, tmp: Path) -> list[Row]:
    cluster = PostgresCluster(durable=True)
    await anyio.to_thread.run_sync(cluster.start)
    try:
        size = plan.postgres_size
        template = await _song_template()
        url = await anyio.to_thread.run_sync(cluster.create_database)
        # Seeding commits without waiting for the disk (reads do not care), then the planner's statistics are
        # brought up to date at once, as autovacuum would soon after a ledger grew this much.
        await anyio.to_thread.run_sync(_await_commits, url, False)
        async with await PostgresLedger.open(url) as ledger:
            through_api = min(size, plan.postgres_api_seeded)
            progress(f"seeding the PostgreSQL ledger to {size:,} tasks ({through_api:,} through its API)")
            started = time.perf_counter()
            await _seed(ledger, template, 0, through_api)
            rate = through_api / (time.perf_counter() - started)
            await anyio.to_thread.run_sync(_clone_songs, url, through_api, size)
            await anyio.to_thread.run_sync(_await_commits, url, True)
            await anyio.to_thread.run_sync(_analyze, url)
            if await ledger.count_tasks() != size:
                raise RuntimeError("the PostgreSQL ledger does not hold the seeded tasks")
            listed, read, tools = await _ledger_figures(plan, ledger, size, tmp / "postgres-tools")
        sqlite = SQLITE_SCALE.get(size)
        beside = (
            f"SQLite at this size (section 4) list {ms(sqlite[0])}, get {ms(sqlite[1])}: {listed / sqlite[0]:.1f} × / "
            f"{read / sqlite[1]:.1f} ×"
            if sqlite
            else "SQLite: run section 4 too for its figure"
        )
        progress("a submit's ledger work on each backend")
        submit_url = await anyio.to_thread.run_sync(cluster.create_database)
        async with (
            await PostgresLedger.open(submit_url) as on_postgres,
            await SQLiteLedger.open(tmp / "submit-work" / "ledger.sqlite3") as on_sqlite,
        ):
            pg_submit = await _submit_work(on_postgres, plan.ledger_reads * 2)
            sqlite_submit = await _submit_work(on_sqlite, plan.ledger_reads * 2)
        progress("50 concurrent submits across two replicas")
        burst_url = await anyio.to_thread.run_sync(cluster.create_database)
        pg_wall, pg_call, pg_listed = await _concurrent_submits([burst_url, burst_url], tmp, 50)
        sqlite_wall, sqlite_call, sqlite_listed = await _concurrent_submits([None], tmp, 50)
    finally:
        await anyio.to_thread.run_sync(cluster.stop)
    return [
        Row(
            "7a",
            f"PostgreSQL ledger of {size:,} finished songs: list 50 newest / read one",
            f"ledger API: list_tasks(limit=50) {ms(listed)}, get_task {ms(read)}; {tools}; {beside}; "
            f"median of {plan.ledger_reads}; {min(size, plan.postgres_api_seeded):,} seeded through the API at "
            f"{rate:,.0f} tasks/s (commits not awaited), the rest copies of them in SQL, then ANALYZE",
            "≤ 20 ms (SQLite's target at 10,000)",
            meets(max(listed, read) <= 0.020),
        ),
        Row(
            "7b",
            "a submit's ledger work: begin_unless_duplicate + record_task_id (durable commits)",
            f"PostgreSQL median {ms(median(pg_submit))} (p95 {ms(p95(pg_submit))}); SQLite median "
            f"{ms(median(sqlite_submit))} (p95 {ms(p95(sqlite_submit))}); {len(pg_submit)} each",
            "(info)",
            f"{median(pg_submit) / median(sqlite_submit):.1f} × SQLite",
        ),
        Row(
            "7c",
            "50 concurrent suno_generate_music: two replicas on one PostgreSQL ledger / one SQLite server",
            f"two replicas: {ms(pg_wall)} in all, median call {ms(pg_call)}, {pg_listed} tasks listed by both; "
            f"SQLite: {ms(sqlite_wall)} in all, median call {ms(sqlite_call)}, {sqlite_listed} listed",
            "50 distinct tasks, all listed by every replica",
            meets(pg_listed == 50 and sqlite_listed == 50),
        ),
    ]


# -- 8. a song in Claude Code, with MCP tasks and without ----------------------------------------------------

SONG_SECONDS = 150.0
"""The generation the row is about: a song at Suno takes one to three minutes."""
TIME_SCALE = 50.0
"""Section 8 runs this many times faster than life: the generation, the watcher's interval and the wait's limit
shrink together (a 50 s wait is a 1 s one), so the counts are those of a real 150 s song."""
SCALED_SERVER = (
    "import sys, anyio; "
    "from ccapi_suno_mcp.app import create_server; from ccapi_suno_mcp.settings import Settings; "
    "from ccapi_suno_mcp.stdio import serve_stdio; "
    "anyio.run(serve_stdio, create_server(Settings.from_env(), poll_interval=float(sys.argv[1])))"
)
MUSIC_RUN_SECONDS = 4.0
"""The sandbox's MUSIC generation at speed 1 (`sandbox/_actions.py`)."""
TASKS_EXTENSION = "io.modelcontextprotocol/tasks"


def _modern_meta(*, tasks: bool) -> dict[str, Any]:
    capabilities: dict[str, Any] = {"extensions": {TASKS_EXTENSION: {}}} if tasks else {}
    return {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": capabilities,
        "io.modelcontextprotocol/clientInfo": {"name": "claude-code-like", "version": "0"},
    }


@dataclass
class Conversation:
    """What one "make me a song" costs: model requests (each one a model turn, billed in tokens), tool calls the
    model makes, and `tasks/get` polls the client makes on its own (free: no model turn, no CCAPI request)."""

    model_requests: int = 0
    tool_calls: int = 0
    polls: int = 0
    seconds: float = 0.0


def _song_conversation(server: RawStdioServer, *, tasks: bool, index: int) -> Conversation:
    """The fake model's conversation as Claude Code runs it (`reference/mcp-tasks.md`): without tasks the model
    submits, then calls suno_wait_for_tasks (50 s, scaled) until the song is done, one model turn per tool result;
    with tasks the call is backgrounded (the turn ends on the placeholder), Claude Code polls `tasks/get` every
    `pollIntervalMs` (scaled), and the finished song starts one more turn."""
    talk = Conversation(model_requests=1)  # the user's prompt
    started = time.perf_counter()

    def call(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        talk.tool_calls += 1
        talk.model_requests += 1  # the tool's result goes back to the model
        params = {"name": tool, "arguments": arguments, "_meta": _modern_meta(tasks=tasks)}
        return server.request("tools/call", params)

    first = call(MUSIC, {"description": f"a song about rain on a tin roof (#{index})", "tags": "indie pop"})
    if tasks:
        if first.get("resultType") != "task":
            raise RuntimeError(f"the call was not answered with a task: {first}")
        while True:
            # The client's pace: pollIntervalMs, which is the watcher's interval (unscaled: DEFAULT_INTERVAL), scaled.
            time.sleep(DEFAULT_INTERVAL / TIME_SCALE)
            talk.polls += 1
            task = server.request("tasks/get", {"taskId": first["taskId"], "_meta": _modern_meta(tasks=True)})
            if task["status"] != "working":
                break
        if task["status"] != "completed" or not task["result"]["structuredContent"]["all_done"]:
            raise RuntimeError(f"the task did not complete: {task}")
        talk.model_requests += 1  # the <task-notification> turn
    else:
        if "structuredContent" not in first:
            raise RuntimeError(f"the submit failed: {first}")
        task_id = first["structuredContent"]["task_id"]
        limit = max(1, round(50 / TIME_SCALE))
        while not call("suno_wait_for_tasks", {"task_ids": [task_id], "timeout_seconds": limit})["structuredContent"][
            "all_done"
        ]:
            pass
    talk.seconds = (time.perf_counter() - started) * TIME_SCALE
    return talk


async def claude_code_rows(plan: Plan, tmp: Path) -> list[Row]:
    speed = MUSIC_RUN_SECONDS / (SONG_SECONDS / TIME_SCALE)
    results: dict[bool, list[Conversation]] = {False: [], True: []}
    async with serve_sandbox(Sandbox(api_key=KEY, speed=speed)) as origin:
        env = server_env(tmp / "claude-code-home", CCAPI_API_KEY=KEY, CCAPI_BASE_URL=origin)
        command = (sys.executable, "-c", SCALED_SERVER, str(DEFAULT_INTERVAL / TIME_SCALE))
        for run in range(plan.completion_runs):
            for tasks in (False, True):
                server = RawStdioServer(command, env)
                try:
                    talk = await anyio.to_thread.run_sync(
                        partial(_song_conversation, server, tasks=tasks, index=2 * run + tasks)
                    )
                finally:
                    server.close()
                results[tasks].append(talk)

    def summary(talks: list[Conversation]) -> str:
        requests = median([talk.model_requests for talk in talks])
        calls = median([talk.tool_calls for talk in talks])
        return f"{requests:.0f} model requests, {calls:.0f} tool call{'' if calls == 1 else 's'}"

    without, with_tasks = results[False], results[True]
    polls = median([talk.polls for talk in with_tasks])
    return [
        Row(
            "8a",
            f"one song ({SONG_SECONDS:.0f} s at Suno) in Claude Code, per song: without MCP tasks / with them "
            "(fake model, time scaled 1:50)",
            f"without: {summary(without)} (a submit, then waits of 50 s); with tasks: {summary(with_tasks)}, "
            f"{polls:.0f} free tasks/get polls; {len(without)} runs each",
            "with tasks: 1 tool call, the song arrives by itself",
            f"{median([t.model_requests for t in without]) / median([t.model_requests for t in with_tasks]):.1f} "
            "× fewer model requests",
        )
    ]


def table(rows: Sequence[Row]) -> str:
    header = Row("#", "what", "figure(s)", "target", "ratio / verdict")
    cells = [(row.key, row.what, row.figures, row.target, row.verdict) for row in (header, *rows)]
    widths = [max(len(cell[column]) for cell in cells) for column in range(5)]

    def line(cell: tuple[str, ...]) -> str:
        return "| " + " | ".join(text.ljust(width) for text, width in zip(cell, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(cells[0]), rule, *(line(cell) for cell in cells[1:])])


Section = Callable[[], Awaitable[list[Row]]]


async def run_sections(plan: Plan, tmp: Path, only: set[str] | None, errlog: TextIO) -> tuple[list[Row], bool]:
    sections: dict[str, tuple[str, Section]] = {
        "1": ("start-up", lambda: anyio.to_thread.run_sync(startup_rows, plan, tmp)),
        "2": ("call overhead", lambda: call_overhead_rows(plan, tmp, errlog)),
        "3": ("polling cost", lambda: polling_rows(plan, tmp)),
        "4": ("ledger scale and memory", lambda: ledger_rows(plan, tmp)),
        "5": ("completion latency", lambda: completion_rows(plan, tmp)),
        "6": ("tool list tokens", lambda: token_rows(tmp)),
        "7": ("the PostgreSQL ledger", lambda: postgres_rows(plan, tmp)),
        "8": ("a song in Claude Code, with MCP tasks and without", lambda: claude_code_rows(plan, tmp)),
    }
    rows: list[Row] = []
    failed = False
    for number, (title, section) in sections.items():
        if only is not None and number not in only:
            continue
        keys = tuple(key for key in ROW_KEYS if key.startswith(number))
        progress(f"{number}. {title}")
        started = time.perf_counter()
        try:
            rows.extend(await section())
        except Exception as exc:  # top level of one section: report it in its rows and go on with the others
            failed = True
            rows.extend(Row(key, title, f"{type(exc).__name__}: {exc}", "-", "ERROR") for key in keys)
        progress(f"{number}. {title}: {time.perf_counter() - started:.1f} s")
    return sorted(rows, key=lambda row: ROW_KEYS.index(row.key)), failed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="few runs and small sizes (CI); still every row")
    parser.add_argument("--only", default=None, help="comma list of sections to run (1-8), for experiments")
    args = parser.parse_args(argv)
    plan = Plan.quick() if args.quick else Plan.full()
    only = set(args.only.split(",")) if args.only else None
    # One INFO line per request or submit (in-memory servers log in this process) would bury the progress lines.
    for name in ("httpx2", "ccapi_suno_mcp", "psycopg.pool"):
        logging.getLogger(name).setLevel(logging.WARNING)
    started = time.perf_counter()
    compiled = compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="ccapi-suno-bench-") as directory:
        tmp = Path(directory)
        with (tmp / "stdio-server.log").open("w") as errlog:
            rows, failed = anyio.run(run_sections, plan, tmp, only, errlog)
    elapsed = time.perf_counter() - started
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"ccapi-suno-mcp benchmark ({plan.name} run) — Python {platform.python_version()}, mcp {version('mcp')}, "
        f"{os.cpu_count()} CPUs, load {load}"
    )
    print(f"Bytecode compiled first, the environment's packages included ({compiled}); each spawned command ran once")
    print("unmeasured before the timed runs.")
    print()
    print(table(rows))
    print()
    if TOKEN_DETAILS:
        print("Tokens per tool (o200k_base): model-visible, output schema, whole entry")
        print("| tool | visible | output | entry |\n|---|---|---|---|")
        print("\n".join(TOKEN_DETAILS))
        print()
    print("Notes: start-up is timed with raw JSON-RPC over the pipes (no client library start-up counted). A PENDING")
    print("task never finishes (sandbox:stuck), so suno_get_task fetches it from CCAPI; a FINISHED one is answered")
    print("from the ledger. 'client validation' is mcp.Client re-validating each structured result against the")
    print("tool's outputSchema with pure-Python jsonschema: client cost, included in the call times above.")
    print(f"Took {elapsed:.1f} s. Figures are medians (p95 where shown); baselines were measured in the same run.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
