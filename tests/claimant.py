"""A second process on a shared ledger, for the cross-process race tests (`python tests/claimant.py LEDGER N`).

It opens the ledger, then for each of N rounds prints `ready`, waits for a line `go` on its stdin, claims the
same submit as its rival (`begin_unless_duplicate`) and prints the outcome as one JSON line. A claim that
fails ends the process with its traceback on stderr.
"""

from __future__ import annotations

import json
import sys

import anyio
import anyio.to_thread

from ccapi_suno_mcp.ledger import SQLiteLedger


def race_body(round_number: int) -> dict[str, str]:
    """The request both processes submit in a round: new each round, identical in both."""
    return {"gpt_description_prompt": f"a song both processes want, round {round_number}"}


async def claim_rounds(path: str, rounds: int) -> None:
    async with await SQLiteLedger.open(path) as ledger:
        for round_number in range(rounds):
            print("ready", flush=True)
            if (await anyio.to_thread.run_sync(sys.stdin.readline)).strip() != "go":
                return
            record, is_new = await ledger.begin_unless_duplicate(
                tool="suno_generate_music", action="MUSIC", body=race_body(round_number)
            )
            print(json.dumps({"submission_id": record.submission_id, "is_new": is_new}), flush=True)


if __name__ == "__main__":
    anyio.run(claim_rounds, sys.argv[1], int(sys.argv[2]))
