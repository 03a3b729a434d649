"""One ledger file shared by two real processes: the README says it is safe to share, so race them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

import ccapi_suno_mcp
from ccapi_suno_mcp.ledger import SQLiteLedger
from claimant import race_body

ROUNDS = 40
CLAIMANT = Path(__file__).parent / "claimant.py"


class Rival:
    """One claimant process, read line by line; a claimant that dies fails the test with its stderr."""

    def __init__(self, process: Process) -> None:
        assert process.stdout is not None and process.stdin is not None
        self.process = process
        self._lines = BufferedByteReceiveStream(process.stdout)

    async def line(self) -> str:
        try:
            return (await self._lines.receive_until(b"\n", 65536)).decode()
        except (anyio.IncompleteRead, anyio.EndOfStream):
            assert self.process.stderr is not None
            stderr = b"".join([chunk async for chunk in self.process.stderr]).decode(errors="replace")
            pytest.fail(f"a claimant process died:\n{stderr}")

    async def go(self) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(b"go\n")


@pytest.mark.anyio
async def test_two_processes_racing_identical_submits_on_one_ledger_begin_each_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    await (await SQLiteLedger.open(path)).aclose()  # the schema exists before the race starts
    # The claimants import the very code under test (a mutated copy too, when scripts/mutation runs this).
    env = {**os.environ, "PYTHONPATH": str(Path(ccapi_suno_mcp.__file__).parent.parent)}
    command = [sys.executable, str(CLAIMANT), str(path), str(ROUNDS)]
    outcomes: list[list[dict[str, Any]]] = []
    with anyio.fail_after(60):
        async with (
            await anyio.open_process(command, env=env, stderr=subprocess.PIPE) as first,
            await anyio.open_process(command, env=env, stderr=subprocess.PIPE) as second,
        ):
            rivals = [Rival(first), Rival(second)]
            for _ in range(ROUNDS):
                assert [await rival.line() for rival in rivals] == ["ready", "ready"]
                for rival in rivals:  # both are blocked on their stdin: they claim at the same moment
                    await rival.go()
                outcomes.append([json.loads(await rival.line()) for rival in rivals])
            exit_codes = [await first.wait(), await second.wait()]
    async with await SQLiteLedger.open(path) as ledger:
        count = await ledger.count_tasks()
        duplicates = [await ledger.find_duplicate(action="MUSIC", body=race_body(n)) for n in range(ROUNDS)]
    assert exit_codes == [0, 0]
    for pair in outcomes:
        assert sorted(outcome["is_new"] for outcome in pair) == [False, True], pair
        assert pair[0]["submission_id"] == pair[1]["submission_id"], pair
    assert count == ROUNDS
    assert [record.submission_id if record else None for record in duplicates] == [
        next(outcome["submission_id"] for outcome in pair if outcome["is_new"]) for pair in outcomes
    ]
