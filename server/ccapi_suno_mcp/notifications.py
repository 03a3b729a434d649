"""Resource change notifications, to clients of both protocol eras.

2026-07-28 clients listen with `subscriptions/listen`: events go through the server's
subscription bus. 2025-era clients get `notifications/resources/list_changed` on their connection,
and `notifications/resources/updated` for the URIs they subscribed to with `resources/subscribe`.

With principals kept apart, a change is told only to the principal whose task changed: each listen stream and
each 2025-era connection belongs to the principal that opened it (`PrincipalBus`, `Notifier.remember`), so a
subscription to another principal's task URI never fires, exactly as one to a task nobody submitted.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ResourcesListChanged,
    ResourceUpdated,
    ServerEvent,
    SubscriptionBus,
)

from ccapi_suno_mcp.principals import current_principal

__all__ = ["RECENT_TASKS_URI", "USAGE_URI", "Notifier", "PrincipalBus", "clip_uri", "connection_of", "task_uri"]

logger = logging.getLogger(__name__)

RECENT_TASKS_URI = "suno://tasks/recent"
USAGE_URI = "suno://usage"


def task_uri(task_id: str) -> str:
    return f"suno://tasks/{task_id}"


def clip_uri(clip_id: str) -> str:
    return f"suno://clips/{clip_id}"


def connection_of(session: Any) -> Any:
    """The connection behind a request's `ServerSession`, which lives as long as the client stays.

    A `ServerSession` is made per request in mcp 2.x, so it cannot key a subscription; the SDK has
    no public accessor for its connection yet.
    """
    return getattr(session, "_connection", session)


class PrincipalBus:
    """The server's subscription bus, one in-memory bus per principal: a listen stream hears what is published
    to everyone (`publish`) and what is published to the principal whose request opened it (`publish_to`)."""

    def __init__(self) -> None:
        self._buses: dict[str, InMemorySubscriptionBus] = {}

    @property
    def principals(self) -> set[str]:
        """The principals that have opened a listen stream (and may still listen)."""
        return set(self._buses)

    async def publish(self, event: ServerEvent) -> None:
        """Deliver `event` to every listener, whoever opened it."""
        for bus in list(self._buses.values()):
            await bus.publish(event)

    async def publish_to(self, principal: str, event: ServerEvent) -> None:
        """Deliver `event` to the listeners `principal` opened only."""
        bus = self._buses.get(principal)
        if bus is not None:
            await bus.publish(event)

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        """Register `listener` for the principal of the request being handled; returns its unsubscribe."""
        return self._buses.setdefault(current_principal(), InMemorySubscriptionBus()).subscribe(listener)


OwnedTasks = Callable[[str, list[str]], Awaitable[list[str]]]
"""`(principal, task_ids)`: those of the ids that are the principal's tasks."""


class Notifier:
    """Fans ledger changes out as resource notifications (and, through `relay`, to the other replicas)."""

    def __init__(self, bus: SubscriptionBus) -> None:
        self._bus = bus
        self.relay: Callable[..., Awaitable[None]] | None = None
        """`TaskLedger.announce` of a shared ledger: the other replicas hear of every change told here."""
        self.owned: OwnedTasks | None = None
        """With principals kept apart, how to tell whose tasks changed (None: everyone is told of everything)."""
        # 2025-era connections seen, with the URIs each subscribed to and the principal that used it last; weak so
        # closed ones drop out.
        self._legacy: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
        self._whose: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()

    def remember(self, connection: Any, protocol_version: str | None) -> None:
        """Note the connection of a 2025-era client, so that it hears of list changes (its principal's)."""
        if protocol_version is not None and protocol_version >= "2026":
            return
        self._legacy.setdefault(connection, set())
        self._whose[connection] = current_principal()

    def subscribe(self, connection: Any, uri: str) -> None:
        self._legacy.setdefault(connection, set()).add(uri)
        self._whose[connection] = current_principal()

    def unsubscribe(self, connection: Any, uri: str) -> None:
        self._legacy.get(connection, set()).discard(uri)

    async def tasks_changed(
        self,
        task_ids: Iterable[str],
        *,
        list_changed: bool,
        spend: bool = False,
        relay: bool = True,
        principal: str | None = None,
    ) -> None:
        """Tell every listener that these tasks changed (and the task list, and the spend, if they did); and the
        other replicas, unless `relay` is False (the change was heard from one of them).

        With principals kept apart only the tasks' own principal is told: `principal` when the caller knows it
        (the tasks are all its own), else whoever `owned` says each task belongs to. A change of no known task
        and owner (another replica's submission whose answer was lost, or news missed while the LISTEN was
        down) is told to every listening principal as a change of its list (and spend): that names nothing,
        and each one's list shows only its own.
        """
        task_ids = list(task_ids)
        if relay and self.relay is not None:
            await self._relay([task_id for task_id in task_ids if task_id], list_changed, spend)
        if self.owned is None:
            await self._tell(None, task_ids, list_changed=list_changed, spend=spend)
            return
        listening: set[str] = set(self._whose.values())
        if isinstance(self._bus, PrincipalBus):
            listening |= self._bus.principals
        unowned = principal is None and not any(task_ids)
        for whose in sorted(listening):
            if unowned:
                await self._tell(whose, [], list_changed=list_changed, spend=spend)
                continue
            if principal is not None:
                theirs = task_ids if whose == principal else []
            else:
                theirs = await self._owned_by(whose, task_ids)
            if theirs:
                await self._tell(whose, theirs, list_changed=list_changed, spend=spend)

    async def _owned_by(self, principal: str, task_ids: list[str]) -> list[str]:
        from ccapi_suno_mcp.ledger import LedgerError

        assert self.owned is not None
        try:
            return await self.owned(principal, [task_id for task_id in task_ids if task_id])
        except LedgerError as exc:  # no one can read the ledger now; they hear of it on their next look
            logger.warning("could not tell whose tasks changed: %s", exc)
            return []

    async def _tell(self, principal: str | None, task_ids: list[str], *, list_changed: bool, spend: bool) -> None:
        """Notify the listeners of `principal` (None: everyone's) of a change of these tasks."""
        uris = [task_uri(task_id) for task_id in task_ids]
        updated = [*uris, RECENT_TASKS_URI] if uris else []
        if spend:
            updated.append(USAGE_URI)
        events: list[ServerEvent] = [ResourcesListChanged()] if list_changed else []
        events += [ResourceUpdated(uri=uri) for uri in updated]
        for event in events:
            if principal is not None and isinstance(self._bus, PrincipalBus):
                await self._bus.publish_to(principal, event)
            else:
                await self._bus.publish(event)
        for connection, subscribed in list(self._legacy.items()):
            if principal is not None and self._whose.get(connection) != principal:
                continue
            try:
                if list_changed:
                    await connection.send_resource_list_changed()
                for uri in updated:
                    if uri in subscribed:
                        await connection.send_resource_updated(uri)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, RuntimeError) as exc:
                logger.debug("dropping a closed connection from notifications: %r", exc)
                self._legacy.pop(connection, None)
                self._whose.pop(connection, None)

    async def _relay(self, task_ids: list[str], list_changed: bool, spend: bool) -> None:
        from ccapi_suno_mcp.ledger import LedgerError

        assert self.relay is not None
        try:
            await self.relay(task_ids, list_changed=list_changed, spend=spend)
        except LedgerError as exc:  # the other replicas hear of it on their next look; this call goes on
            logger.warning("could not tell the other replicas of a change: %s", exc)
