"""Resource change notifications, to clients of both protocol eras.

2026-07-28 clients listen with `subscriptions/listen`: events go through the server's
subscription bus. 2025-era clients get `notifications/resources/list_changed` on their connection,
and `notifications/resources/updated` for the URIs they subscribed to with `resources/subscribe`.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
from mcp.server.subscriptions import ResourcesListChanged, ResourceUpdated, SubscriptionBus

__all__ = ["RECENT_TASKS_URI", "USAGE_URI", "Notifier", "clip_uri", "connection_of", "task_uri"]

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


class Notifier:
    """Fans ledger changes out as resource notifications (and, through `relay`, to the other replicas)."""

    def __init__(self, bus: SubscriptionBus) -> None:
        self._bus = bus
        self.relay: Callable[..., Awaitable[None]] | None = None
        """`TaskLedger.announce` of a shared ledger: the other replicas hear of every change told here."""
        # 2025-era connections seen, with the URIs each subscribed to; weak so closed ones drop out.
        self._legacy: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()

    def remember(self, connection: Any, protocol_version: str | None) -> None:
        """Note the connection of a 2025-era client, so that it hears of list changes."""
        if protocol_version is not None and protocol_version >= "2026":
            return
        self._legacy.setdefault(connection, set())

    def subscribe(self, connection: Any, uri: str) -> None:
        self._legacy.setdefault(connection, set()).add(uri)

    def unsubscribe(self, connection: Any, uri: str) -> None:
        self._legacy.get(connection, set()).discard(uri)

    async def tasks_changed(
        self, task_ids: Iterable[str], *, list_changed: bool, spend: bool = False, relay: bool = True
    ) -> None:
        """Tell every listener that these tasks changed (and the task list, and the spend, if they did); and the
        other replicas, unless `relay` is False (the change was heard from one of them)."""
        task_ids = list(task_ids)
        if relay and self.relay is not None:
            await self._relay([task_id for task_id in task_ids if task_id], list_changed, spend)
        uris = [task_uri(task_id) for task_id in task_ids]
        updated = [*uris, RECENT_TASKS_URI] if uris else []
        if spend:
            updated.append(USAGE_URI)
        if list_changed:
            await self._bus.publish(ResourcesListChanged())
        for uri in updated:
            await self._bus.publish(ResourceUpdated(uri=uri))
        for connection, subscribed in list(self._legacy.items()):
            try:
                if list_changed:
                    await connection.send_resource_list_changed()
                for uri in updated:
                    if uri in subscribed:
                        await connection.send_resource_updated(uri)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, RuntimeError) as exc:
                logger.debug("dropping a closed connection from notifications: %r", exc)
                self._legacy.pop(connection, None)

    async def _relay(self, task_ids: list[str], list_changed: bool, spend: bool) -> None:
        from ccapi_suno_mcp.ledger import LedgerError

        assert self.relay is not None
        try:
            await self.relay(task_ids, list_changed=list_changed, spend=spend)
        except LedgerError as exc:  # the other replicas hear of it on their next look; this call goes on
            logger.warning("could not tell the other replicas of a change: %s", exc)
