"""`ccapi-suno-mcp doctor`: check the set-up with free calls only, print a table, exit non-zero on a problem.

It never prints the key. Checks: the configuration, whether CCAPI answers and accepts the key (an
empty batch fetch), the balance, the ledger and download folders, and which action tokens the
account's model list confirms (reference §11: `suno_<action>` names are action tokens).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TextIO

from ccapi_suno_mcp import ccapi
from ccapi_suno_mcp._disk import unwritable_reason
from ccapi_suno_mcp.catalogue import Catalogue
from ccapi_suno_mcp.errors import redact, tool_error
from ccapi_suno_mcp.ledger import LedgerError, LedgerUnusableError, SQLiteLedger
from ccapi_suno_mcp.settings import Settings, SettingsError

__all__ = ["Check", "run_doctor"]

Verdict = Literal["ok", "warn", "fail"]
_MARKS: Mapping[Verdict, str] = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    verdict: Verdict
    detail: str


async def _ledger_check(settings: Settings) -> Check:
    if settings.ledger_url is not None:
        return await _shared_ledger_check(settings.ledger_url)
    reason = unwritable_reason(settings.home)
    if reason is not None:
        return Check("ledger", "fail", f"cannot write {settings.home}: {reason} (set CCAPI_SUNO_HOME)")
    try:
        async with await SQLiteLedger.open(settings.ledger_path) as ledger:
            count = await ledger.count_tasks()
    except LedgerUnusableError as exc:
        return Check("ledger", "fail", str(exc))
    except (LedgerError, sqlite3.Error, OSError) as exc:
        return Check("ledger", "fail", f"{settings.ledger_path}: {exc}")
    return Check("ledger", "ok", f"{settings.ledger_path} ({count} task{'s' if count != 1 else ''})")


async def _shared_ledger_check(url: str) -> Check:
    from ccapi_suno_mcp.ledger import PostgresLedger

    ledger = PostgresLedger(url)
    try:
        pending = len(await ledger.pending_task_ids())  # connects and migrates first
    except LedgerError as exc:
        return Check("ledger", "fail", str(exc))
    finally:
        await ledger.aclose()
    return Check("ledger", "ok", f"{ledger.url} (PostgreSQL, shared by the replicas; {pending} pending for all users)")


def _token_check(catalogue: Catalogue, models: list[str]) -> Check:
    offered = {name.removeprefix("suno_").upper() for name in models if name.startswith("suno_")}
    if not offered:
        return Check("action tokens", "warn", "the account's model list names no suno_* models; tokens unverified")
    ours = {spec.action for spec in catalogue.enabled}
    missing = sorted(ours - offered)
    extra = sorted(offered - ours)
    detail = f"{len(ours) - len(missing)}/{len(ours)} catalogue tokens are on the account's model list"
    if missing:
        detail += f"; not listed: {', '.join(missing)} (fix with CCAPI_SUNO_ACTIONS)"
    if extra:
        detail += f"; the account also offers: {', '.join(extra)}"
    return Check("action tokens", "warn" if missing else "ok", detail)


async def collect_checks(settings: Settings, client: ccapi.SunoClient) -> list[Check]:
    """Every check, in order; CCAPI is only asked free questions."""
    checks: list[Check] = []
    if settings.api_key:
        checks.append(Check("api key", "ok", "set"))
    elif settings.api_key_problem is not None:
        checks.append(Check("api key", "fail", settings.api_key_problem))
    elif settings.api_key_placeholder is not None:
        detail = f"CCAPI_API_KEY holds {settings.api_key_placeholder!r}, a placeholder the client did not expand"
        checks.append(Check("api key", "fail", f"{detail}: put the real key in the server's environment"))
    else:
        checks.append(Check("api key", "fail", "CCAPI_API_KEY is not set: add it to the server's environment"))
    checks.append(Check("base url", "ok", settings.base_url))
    checks.append(await _ledger_check(settings))
    reason = unwritable_reason(settings.downloads)
    checks.append(
        Check("downloads", "ok", str(settings.downloads))
        if reason is None
        else Check("downloads", "fail", f"cannot write {settings.downloads}: {reason} (set CCAPI_SUNO_DOWNLOAD_DIR)")
    )
    if not settings.api_key:
        return checks
    try:
        await client.check_access()
    except ccapi.CCAPIError as exc:
        message = str(tool_error(exc, base_url=settings.base_url, api_key=settings.api_key))
        checks.append(Check("ccapi access", "fail", message))
        return checks
    checks.append(Check("ccapi access", "ok", "CCAPI answered and accepted the key (free empty batch fetch)"))
    try:
        balance = await client.get_balance()
    except ccapi.CCAPIError as exc:
        checks.append(Check("balance", "warn", f"could not read it ({redact(str(exc), settings.api_key)})"))
    else:
        text = "unlimited" if balance.unlimited else f"${balance.remaining_usd:.2f} left"
        low = not balance.unlimited and (balance.remaining_usd or 0.0) < 0.5
        checks.append(Check("balance", "warn" if low else "ok", text))
    try:
        models = await client.list_models()
    except ccapi.CCAPIError as exc:
        checks.append(Check("action tokens", "warn", f"model list unavailable ({redact(str(exc), settings.api_key)})"))
    else:
        checks.append(_token_check(settings.catalogue(), models))
    return checks


def render(checks: list[Check]) -> str:
    width = max(len(check.name) for check in checks)
    return "\n".join(f"{_MARKS[check.verdict]}  {check.name.ljust(width)}  {check.detail}" for check in checks)


async def run_doctor(environ: Mapping[str, str] | None = None, *, out: TextIO) -> int:
    """Run every check, print the table to `out`, return the exit status (1 if any check failed)."""
    try:
        settings = Settings.from_env(os.environ if environ is None else environ)
    except SettingsError as exc:
        out.write(f"FAIL  configuration  {exc}\n")
        return 1
    async with ccapi.SunoClient(api_key=settings.api_key, base_url=settings.base_url, max_retries=1) as client:
        checks = await collect_checks(settings, client)
    out.write(render(checks) + "\n")
    failed = [check for check in checks if check.verdict == "fail"]
    out.write(f"{len(failed)} problem(s) found.\n" if failed else "All good.\n")
    return 1 if failed else 0
