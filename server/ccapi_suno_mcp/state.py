"""What the server's lifespan holds, and how tools, resources and prompts reach it.

The CCAPI client, the ledger and the watcher are made on first use, not when the server starts: listing the
tools needs none of them, and importing and opening them would otherwise delay the client's first answer. With
a key, the lifespan starts the watcher a moment later (it resumes pending tasks), which makes all three.

The ledger is the SQLite file in the home folder, or the PostgreSQL database of `CCAPI_SUNO_LEDGER_URL` that a
team's replicas share; tools and resources see it as the principal of the request (`principals`), the watcher
sees all of it. On a shared ledger the lifespan also follows the other replicas' announcements.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from mcp.server.mcpserver import Context

from ccapi_suno_mcp.catalogue import Catalogue
from ccapi_suno_mcp.notifications import Notifier, connection_of
from ccapi_suno_mcp.principals import current_principal
from ccapi_suno_mcp.settings import DEFAULT_PRINCIPAL, Settings

if TYPE_CHECKING:
    import httpx2

    from ccapi_suno_mcp.ccapi import CCAPIError, SunoClient
    from ccapi_suno_mcp.ccapi._addresses import Resolver
    from ccapi_suno_mcp.ledger import TaskLedger
    from ccapi_suno_mcp.spend import Calendar
    from ccapi_suno_mcp.watcher import Watcher

__all__ = ["AppState", "app_state"]


class AppState:
    """The objects one server process shares; `aclose()` closes those it opened.

    Args:
        settings, catalogue, notifier: as the server was built with them.
        base_url, api_key: where and as whom the CCAPI client talks (the sandbox's own, in sandbox mode).
        ledger_path: the SQLite ledger's file, opened on first use (ignored when `ledger` is given, or when the
            settings name a PostgreSQL ledger outside sandbox mode).
        ledger: a ledger the caller owns, used instead.
        http_client: an httpx2 client for the CCAPI client (tests pass one with a mock transport).
        resolve: how the CCAPI client resolves media hosts (tests with a mock CDN pass their own).
        interval: seconds between the watcher's polls (None: the watcher's default).
        sandbox_url: the in-process sandbox's origin, in sandbox mode.
        calendar: the clock and time zone of spend and budgets (None: now, in the machine's local time).
    """

    def __init__(
        self,
        *,
        settings: Settings,
        catalogue: Catalogue,
        notifier: Notifier,
        base_url: str,
        api_key: str | None,
        ledger_path: Path,
        ledger: TaskLedger | None = None,
        http_client: httpx2.AsyncClient | None = None,
        resolve: Resolver | None = None,
        interval: float | None = None,
        sandbox_url: str | None = None,
        calendar: Calendar | None = None,
    ) -> None:
        self.settings = settings
        self.catalogue = catalogue
        self.notifier = notifier
        self.sandbox_url = sandbox_url
        self._base_url = base_url
        self._api_key = api_key
        self._ledger_path = ledger_path
        self._http_client = http_client
        self._resolve = resolve
        self._interval = interval
        self._client: SunoClient | None = None
        self._ledger = ledger
        self._owns_ledger = ledger is None
        self._watcher: Watcher | None = None
        self._watcher_wanted = anyio.Event()
        self._calendar = calendar
        if settings.isolated:
            notifier.owned = self._owned_by  # each principal hears of its own tasks only

    @property
    def client(self) -> SunoClient:
        """The CCAPI client."""
        if self._client is None:
            from ccapi_suno_mcp.ccapi import SunoClient

            self._client = SunoClient(
                api_key=self._api_key, base_url=self._base_url, http_client=self._http_client, resolve=self._resolve
            )
        return self._client

    @property
    def ledger(self) -> TaskLedger:
        """The task ledger as the principal of the current request sees it."""
        return self.whole_ledger.for_principal(current_principal())

    @property
    def downloads(self) -> Path:
        """Where `suno_download` saves the current principal's files: the download folder, or a folder of the
        principal's own in it (named after the principal) when principals are kept apart."""
        principal = current_principal()
        if not self.settings.isolated or principal == DEFAULT_PRINCIPAL:
            return self.settings.downloads
        return self.settings.downloads / principal

    @property
    def whole_ledger(self) -> TaskLedger:
        """The task ledger as the watcher sees it (the default principal's view; the watcher's side spans all).

        The SQLite file, or the PostgreSQL database, opens on its first query.
        """
        if self._ledger is None:
            if self.settings.ledger_url is not None and not self.settings.sandbox:
                from ccapi_suno_mcp.ledger import PostgresLedger

                self._ledger = PostgresLedger(self.settings.ledger_url)
            else:
                from ccapi_suno_mcp.ledger import SQLiteLedger

                self._ledger = SQLiteLedger(self._ledger_path)
            if self._ledger.shared:
                self.notifier.relay = self._ledger.announce
        return self._ledger

    async def _owned_by(self, principal: str, task_ids: list[str]) -> list[str]:
        return [
            record.task_id
            for record in await self.whole_ledger.for_principal(principal).get_tasks(task_ids)
            if record.task_id
        ]

    @property
    def watcher(self) -> Watcher:
        """The background poller of pending tasks."""
        if self._watcher is None:
            from ccapi_suno_mcp.watcher import DEFAULT_INTERVAL, Watcher

            interval = self._interval or DEFAULT_INTERVAL
            self._watcher = Watcher(self.client, self.whole_ledger, self.notifier, interval=interval)
            self._watcher_wanted.set()
        return self._watcher

    async def run_watcher(self, delay: float) -> None:
        """Run the watcher until cancelled, starting `delay` seconds after start-up or at the first call that needs
        it, whichever is sooner. Making it imports its models and opens the ledger (tens of milliseconds), which
        would otherwise hold up the client's handshake and first `tools/list`."""
        with anyio.move_on_after(delay):
            await self._watcher_wanted.wait()
        await self.watcher.run()

    @property
    def calendar(self) -> Calendar:
        """Local days, weeks and months for spend and budgets."""
        if self._calendar is None:
            from ccapi_suno_mcp.spend import Calendar

            self._calendar = Calendar()
        return self._calendar

    async def follow_replicas(self) -> None:
        """Until cancelled: pass the other replicas' changes on to this one's listeners and watcher.

        Returns at once on a ledger no other replica shares.
        """

        async def heard(task_ids: list[str], list_changed: bool, spend: bool) -> None:
            await self.notifier.tasks_changed(task_ids, list_changed=list_changed, spend=spend, relay=False)
            if self._watcher is not None:
                self._watcher.wake()  # a leader polls what was just submitted elsewhere; a follower's waiters re-read

        await self.whole_ledger.follow(heard)

    async def aclose(self) -> None:
        """Close the client and the ledger, if they were opened (a ledger the caller owns stays open)."""
        if self._client is not None:
            await self._client.aclose()
        if self._owns_ledger and self._ledger is not None:
            await self._ledger.aclose()

    def error(self, error: CCAPIError, subject: str = "") -> Exception:
        """The tool error for a CCAPI failure, with the key redacted."""
        from ccapi_suno_mcp.errors import no_key_message, tool_error

        return tool_error(
            error,
            base_url=self.client.base_url,
            api_key=self.settings.api_key,
            subject=subject,
            no_key=no_key_message(self.settings.api_key_placeholder, self.settings.api_key_problem),
        )


def app_state(ctx: Context[Any, Any]) -> AppState:
    """The lifespan's `AppState` from a tool's, resource's or prompt's context."""
    request = ctx.request_context
    state = request.lifespan_context
    if not isinstance(state, AppState):  # pragma: no cover - a server built without create_server
        raise TypeError("the server was not built by create_server")
    state.notifier.remember(connection_of(request.session), request.protocol_version)
    return state
