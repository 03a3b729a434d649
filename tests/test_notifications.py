"""Notifications with principals kept apart: who hears of what."""

from __future__ import annotations

import pytest
from mcp.server.subscriptions import ResourcesListChanged, ResourceUpdated, ServerEvent

from ccapi_suno_mcp import principals
from ccapi_suno_mcp.notifications import USAGE_URI, Notifier, PrincipalBus, task_uri


def listening(bus: PrincipalBus, principal: str) -> list[ServerEvent]:
    heard: list[ServerEvent] = []
    token = principals._current.set(principal)  # pyright: ignore[reportPrivateUsage] - as a request of theirs
    try:
        bus.subscribe(heard.append)
    finally:
        principals._current.reset(token)  # pyright: ignore[reportPrivateUsage]
    return heard


async def owned(principal: str, task_ids: list[str]) -> list[str]:
    return [task_id for task_id in task_ids if task_id.startswith(f"task_{principal}")]


@pytest.mark.anyio
async def test_each_principal_hears_of_its_own_tasks_and_everyone_of_a_change_nobody_can_be_named_for() -> None:
    bus = PrincipalBus()
    notifier = Notifier(bus)
    notifier.owned = owned
    alice, bob = listening(bus, "alice"), listening(bus, "bob")

    await notifier.tasks_changed(["task_alice_1"], list_changed=True, relay=False)
    assert (len(alice), bob) == (3, [])  # her list, her task, her recent tasks; nothing for bob
    alice.clear()

    # News missed while another replica's LISTEN was down, or its submission whose answer was lost: no task id.
    await notifier.tasks_changed([], list_changed=True, spend=True, relay=False)

    for heard in (alice, bob):
        assert heard == [ResourcesListChanged(), ResourceUpdated(uri=USAGE_URI)]
        assert ResourceUpdated(uri=task_uri("task_alice_1")) not in heard
