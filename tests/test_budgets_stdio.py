"""The issue's "done when", over stdio with real processes: `--sandbox` with a $0.10 daily budget.

The first song's cost shows in `suno_get_usage`; the second generation is refused by a client without
elicitation, and asked about in one with it, and nothing is submitted unless the user accepts. (Kept apart from
`test_budgets.py`, which the mutation run selects: mutmut's runner has no stderr for a child process.)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from harness import text_of
from test_budgets import User
from test_server import SONG


def sandbox_server(home: Path, **env: str) -> StdioServerParameters:
    """`ccapi-suno-mcp --sandbox` as a client launches it, with its home and the given environment."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("CCAPI_")}
    environment |= {"CCAPI_SUNO_HOME": str(home), **env}
    return StdioServerParameters(command=sys.executable, args=["-m", "ccapi_suno_mcp", "--sandbox"], env=environment)


@pytest.mark.anyio
async def test_over_stdio_with_a_ten_cent_day_the_first_song_shows_its_cost_and_the_second_needs_the_user(
    tmp_path: Path,
) -> None:
    server = sandbox_server(tmp_path, CCAPI_SUNO_DAILY_BUDGET_USD="0.10")
    with anyio.fail_after(90):
        async with Client(server) as client:  # no elicitation: refused
            first = await client.call_tool("suno_generate_music", SONG)
            assert first.structured_content is not None, text_of(first)
            task_id = first.structured_content["task_id"]
            waited = await client.call_tool("suno_wait_for_tasks", {"task_ids": [task_id], "timeout_seconds": 40})
            assert waited.structured_content is not None and waited.structured_content["all_done"], waited
            used = await client.call_tool("suno_get_usage", {})
            refused = await client.call_tool("suno_generate_music", {**SONG, "title": "Two"})
        user = User("decline")
        async with Client(server, mode="legacy", elicitation_callback=user) as client:  # a new process: asked
            declined = await client.call_tool("suno_generate_music", {**SONG, "title": "Two"})
            after_no = await client.call_tool("suno_list_tasks", {})
            user.answer = "accept"
            accepted = await client.call_tool("suno_generate_music", {**SONG, "title": "Two"})
            after_yes = await client.call_tool("suno_list_tasks", {})
    assert used.structured_content is not None
    assert used.structured_content["today"]["usd"] == 0.08 and "Spent today $0.08" in text_of(used)
    assert refused.is_error and "Over budget" in text_of(refused) and "CCAPI_SUNO_DAILY_BUDGET_USD" in text_of(refused)
    assert declined.is_error and "Nothing was sent" in text_of(declined)
    assert len(user.questions) == 2 and "$0.10 daily budget" in user.questions[0]
    assert after_no.structured_content is not None and len(after_no.structured_content["tasks"]) == 1
    assert not accepted.is_error, text_of(accepted)
    assert after_yes.structured_content is not None and len(after_yes.structured_content["tasks"]) == 2
