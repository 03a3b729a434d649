"""Every PostgreSQL server a test starts is stopped, even when what started it dies without cleaning up."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import pytest
from anyio.streams.text import TextReceiveStream

from polling import eventually

TESTS = Path(__file__).parent

# Starts a cluster, says where it is and its server's pid, then waits to be killed (never stopping it).
OWNER = """
import sys
sys.path.insert(0, sys.argv[1])
from postgres import PostgresCluster
cluster = PostgresCluster()
cluster.start()
print(cluster.folder, cluster.postmaster_pid, flush=True)
sys.stdin.read()
"""


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.anyio
async def test_a_cluster_whose_owner_is_killed_is_stopped_and_deleted() -> None:
    async with await anyio.open_process([sys.executable, "-c", OWNER, str(TESTS)]) as owner:
        assert owner.stdout is not None
        said = ""
        with anyio.fail_after(120):
            async for text in TextReceiveStream(owner.stdout):
                said += text
                if said.endswith("\n"):
                    break
        folder_text, pid_text = said.split()
        folder, pid = Path(folder_text), int(pid_text)
        running_at_first = folder.name.startswith("ccapi-suno-pg-") and _running(pid)
        owner.kill()  # SIGKILL: no finally, no atexit in the owner

    assert running_at_first
    await eventually(lambda: not _running(pid) and not folder.exists(), within=60)
