"""The ledger's claims and duplicate checks, beyond the basics in test_ledger.py: what the money path relies on."""

from __future__ import annotations

import socket
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest
from psycopg import sql

from ccapi_suno_mcp.ccapi import SunoTask
from ccapi_suno_mcp.ledger import LedgerError, OverBudgetError, PostgresLedger, SpendGate, SpendLimit, SQLiteLedger
from ccapi_suno_mcp.ledger._postgres_session import _CLAIMS_KEY, lock_key  # pyright: ignore[reportPrivateUsage] - its locks
from polling import eventually

BODY = {"gpt_description_prompt": "a short indie-pop song about rain", "mv": "chirp-v4-5"}


@pytest.mark.anyio
async def test_begin_submission_always_begins_even_for_an_identical_body(tmp_path: Path) -> None:
    async with await SQLiteLedger.open(tmp_path / "ledger.sqlite3") as ledger:
        first = await ledger.begin_submission(tool="suno_generate_music", action="MUSIC", body=BODY)
        second = await ledger.begin_submission(tool="suno_generate_music", action="MUSIC", body=BODY)
        count = await ledger.count_tasks()
    assert first.submission_id != second.submission_id
    assert (first.state, second.state, count) == ("submitting", "submitting", 2)


@pytest.mark.anyio
async def test_reads_do_not_wait_for_another_process_in_the_middle_of_a_write(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    async with await SQLiteLedger.open(path) as ledger:
        record = await ledger.begin_submission(tool="suno_generate_music", action="MUSIC", body=BODY)
        with closing(sqlite3.connect(path, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")  # holds the write lock, as a second server mid-submit would
            with anyio.fail_after(5):  # a read that asked for the write lock would wait 10 s, then fail
                duplicate = await ledger.find_duplicate("MUSIC", BODY)
                found = await ledger.get_submission(record.submission_id)
            other.execute("ROLLBACK")
    assert duplicate is not None and duplicate.submission_id == record.submission_id
    assert found is not None and found.submission_id == record.submission_id


@pytest.mark.anyio
async def test_every_write_on_the_money_path_is_one_immediate_transaction_synced_to_disk(tmp_path: Path) -> None:
    now = [0.0]
    async with await SQLiteLedger.open(tmp_path / "ledger.sqlite3", clock=lambda: now[0]) as ledger:
        await ledger.count_tasks()  # opens the connection
        statements: list[str] = []
        session = ledger._s.session  # pyright: ignore[reportPrivateUsage] - what reaches SQLite is the point
        assert session is not None
        connection = session.connection
        connection.set_trace_callback(statements.append)
        writes: dict[str, list[str]] = {}
        record, _ = await ledger.begin_unless_duplicate(tool="suno_generate_music", action="MUSIC", body=BODY)
        writes["begin_unless_duplicate"], statements[:] = list(statements), []
        await ledger.record_task_id(record.submission_id, "task_durable")
        writes["record_task_id"], statements[:] = list(statements), []
        other = await ledger.begin_submission(tool="suno_generate_music", action="MUSIC", body={"x": 1})
        writes["begin_submission"], statements[:] = list(statements), []
        await ledger.mark_rejected(other.submission_id, "refused")
        writes["mark_rejected"], statements[:] = list(statements), []
        await ledger.mark_outcome_unknown(record.submission_id, "no answer")
        writes["mark_outcome_unknown"], statements[:] = list(statements), []
        await ledger.begin_submission(tool="suno_generate_music", action="MUSIC", body={"x": 2})
        now[0] += 3600  # a sender that has not answered for an hour is gone: settling it writes
        statements[:] = []
        await ledger.settle_interrupted()
        writes["settle_interrupted"] = statements[1:]  # after the read that finds what to settle
        assert statements[0].startswith("SELECT "), statements
    for name, sent in writes.items():
        assert sent[:2] == ["PRAGMA synchronous = FULL", "BEGIN IMMEDIATE"], name
        assert sent[-2:] == ["COMMIT", "PRAGMA synchronous = NORMAL"], name
        assert sent.count("BEGIN IMMEDIATE") == 1 and sent.count("COMMIT") == 1, name


@pytest.mark.anyio
async def test_a_task_is_found_by_its_title_its_request_and_its_clip_titles_before_and_after_its_id(
    tmp_path: Path,
) -> None:
    body = {"gpt_description_prompt": "rain   on\nthe  roof", "tags": "Köln-Pop"}  # title: "rain on the roof"
    async with await SQLiteLedger.open(tmp_path / "ledger.sqlite3") as ledger:
        record = await ledger.begin_submission(tool="suno_generate_music", action="MUSIC", body=body)
        pages = [await ledger.list_tasks(text=text) for text in ("rain on the roof", "köln-pop")]
        await ledger.record_task_id(record.submission_id, "task_found")
        pages += [await ledger.list_tasks(text=text) for text in ("rain on the roof", "köln-pop", "task_found")]
        clips = [
            {"clip_id": "clip-found-1", "title": "Moonlight Boulevard", "state": "complete"},
            {"clip_id": "clip-found-2", "title": "Second Light", "state": "complete"},  # not the task's title
        ]
        await ledger.apply_update(SunoTask(task_id="task_found", status="SUCCESS", data={"clips": clips}))
        await ledger.record_task_id(record.submission_id, "task_found")  # recorded again: harmless
        pages += [await ledger.list_tasks(text=text) for text in ("köln-pop", "moonlight", "second light")]
    assert [[task.submission_id for task in page.tasks] for page in pages] == [[record.submission_id]] * 8


@pytest.mark.anyio
async def test_a_body_with_a_non_finite_number_is_refused_before_anything_is_stored(tmp_path: Path) -> None:
    async with await SQLiteLedger.open(tmp_path / "ledger.sqlite3") as ledger:
        with pytest.raises(ValueError, match="Out of range float"):
            await ledger.begin_unless_duplicate(tool="t", action="MUSIC", body={"continue_at": float("nan")})
        count = await ledger.count_tasks()
    assert count == 0


@pytest.mark.anyio
async def test_a_second_task_id_for_a_submission_or_one_taken_by_another_is_refused_with_both_named(
    tmp_path: Path,
) -> None:
    async with await SQLiteLedger.open(tmp_path / "ledger.sqlite3") as ledger:
        first = await ledger.begin_submission(tool="t", action="MUSIC", body={"n": 1})
        second = await ledger.begin_submission(tool="t", action="MUSIC", body={"n": 2})
        await ledger.record_task_id(first.submission_id, "task_first")
        with pytest.raises(LedgerError) as other_id:
            await ledger.record_task_id(first.submission_id, "task_other")
        with pytest.raises(LedgerError) as taken:
            await ledger.record_task_id(second.submission_id, "task_first")
    assert str(other_id.value) == f"submission {first.submission_id!r} already has task id 'task_first'"
    assert str(taken.value) == "task id 'task_first' is already recorded for another submission"


GONE_PID = 2**22 + 7  # above Linux's largest pid: no process has it


def _sent_by_a_dead_process(path: Path, submission_id: str) -> None:
    with closing(sqlite3.connect(path)) as connection:
        owner = f"{socket.gethostname()}:{GONE_PID}:gone/1"
        connection.execute("UPDATE tasks SET owner = ? WHERE submission_id = ?", (owner, submission_id))
        connection.commit()


@pytest.mark.anyio
async def test_a_duplicate_whose_sender_died_is_settled_naming_it_and_comes_back_as_find_duplicate_sees_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.sqlite3"
    async with await SQLiteLedger.open(path) as ledger:
        first = await ledger.begin_submission(tool="suno_generate_music", action="MUSIC", body=BODY)
        _sent_by_a_dead_process(path, first.submission_id)
        duplicate, is_new = await ledger.begin_unless_duplicate(tool="suno_generate_music", action="MUSIC", body=BODY)
        seen = await ledger.find_duplicate("MUSIC", BODY)
    assert (duplicate.submission_id, duplicate.state, is_new) == (first.submission_id, "outcome_unknown", False)
    assert duplicate.error == (
        f"the server process that was sending it (pid {GONE_PID} on {socket.gethostname()}) stopped before CCAPI's "
        "answer was recorded"
    )
    assert duplicate == seen


@pytest.mark.anyio
async def test_settling_a_dead_senders_submission_names_its_process(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    async with await SQLiteLedger.open(path) as ledger:
        record = await ledger.begin_submission(tool="suno_generate_music", action="MUSIC", body=BODY)
        _sent_by_a_dead_process(path, record.submission_id)
        await ledger.settle_interrupted()
        settled = await ledger.get_submission(record.submission_id)
    assert settled is not None and settled.state == "outcome_unknown"
    assert settled.error == (
        f"the server process that was sending it (pid {GONE_PID} on {socket.gethostname()}) stopped before CCAPI's "
        "answer was recorded"
    )


def _claims_waiting(url: str) -> int:
    """How many connections to this database wait for the claims lock."""
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.anyio
async def test_replicas_racing_an_identical_call_begin_it_once_whatever_isolation_the_database_defaults_to(
    postgres_url: str,
) -> None:
    # A database whose operator chose another default isolation: the claim must not take its snapshot before
    # it holds the claims lock, or it misses the claim that held it.
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        database = connection.execute("SELECT current_database()").fetchone()
        assert database is not None
        connection.execute(
            sql.SQL("ALTER DATABASE {} SET default_transaction_isolation = 'repeatable read'").format(
                sql.Identifier(database[0])
            )
        )
    # The first round is one call sent to both; the second, two calls of which only one fits the budget.
    budget = SpendGate(price_quota=40000, limits=(SpendLimit("daily", since=0, limit_quota=60000),))
    rounds = [([BODY, BODY], None), ([BODY | {"title": "one"}, BODY | {"title": "two"}], budget)]
    outcomes: list[list[bool]] = []
    async with (
        await PostgresLedger.open(postgres_url, owner="replica-a:1:x") as first,
        await PostgresLedger.open(postgres_url, owner="replica-b:1:x") as second,
    ):

        async def claim(ledger: PostgresLedger, body: dict[str, Any], gate: SpendGate | None, out: list[bool]) -> None:
            try:
                _, is_new = await ledger.begin_unless_duplicate(tool="t", action="MUSIC", body=body, budget=gate)
            except OverBudgetError:
                is_new = False
            out.append(is_new)

        for bodies, gate in rounds:
            began: list[bool] = []
            with psycopg.connect(postgres_url, autocommit=True) as holder:
                holder.execute("SELECT pg_advisory_lock(%s)", (_CLAIMS_KEY,))  # as a claim under way would
                with anyio.fail_after(20):
                    async with anyio.create_task_group() as tasks:
                        tasks.start_soon(claim, first, bodies[0], gate, began)
                        tasks.start_soon(claim, second, bodies[1], gate, began)
                        await eventually(lambda: _claims_waiting(postgres_url) >= 2)  # both replicas are claiming
                        holder.execute("SELECT pg_advisory_unlock(%s)", (_CLAIMS_KEY,))
            outcomes.append(sorted(began))
        count, committed = await first.count_tasks(), await first.committed_quota([0], everyone=True)
    assert outcomes == [[False, True], [False, True]]
    assert (count, committed) == (2, [40000])


def _lock_held(url: str, key: int) -> bool:
    """Whether any session holds the advisory lock `key` in this database."""
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid::bigint = %s AND objid::bigint = %s",
            ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
        ).fetchone()
    return bool(row and row[0])


@pytest.mark.anyio
async def test_a_replica_that_found_its_presence_lock_still_held_takes_it_before_its_next_claim(
    postgres_url: str,
) -> None:
    # The server may hold a replica's presence lock a while after the replica saw that connection break (the
    # old session is ended only when the server notices): the new connection cannot take it at once.
    owner = "replica-a:7:boot/1"
    with psycopg.connect(postgres_url, autocommit=True) as lingering:
        lingering.execute("SELECT pg_advisory_lock(%s)", (lock_key(f"owner:{owner}"),))
        first = await PostgresLedger.open(postgres_url, owner=owner)
        await first.begin_submission(tool="t", action="MUSIC", body=BODY)
    # the old session is gone (once the server has ended it)
    await eventually(lambda: not _lock_held(postgres_url, lock_key(f"owner:{owner}")), within=10)
    # the replica lives on and sends another call
    async with first, await PostgresLedger.open(postgres_url, owner="replica-b:7:boot/1") as second:
        sending = await first.begin_submission(tool="t", action="MUSIC", body={**BODY, "title": "later"})
        await second.settle_interrupted()
        seen = await second.get_submission(sending.submission_id)
    assert seen is not None and (seen.state, seen.error) == ("submitting", None)  # not taken for dead


@pytest.mark.anyio
async def test_replicas_whose_clocks_disagree_keep_the_databases_time_and_still_find_the_duplicate(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    import time

    ahead = lambda: time.time() + 700  # noqa: E731 - a host whose clock is 700 s fast (past the 600 s window)
    async with (
        await PostgresLedger.open(postgres_url, owner="replica-a:1:x") as first,
        PostgresLedger(postgres_url, owner="replica-b:1:x", wall_clock=ahead) as second,
    ):
        record, _ = await first.begin_unless_duplicate(tool="suno_generate_music", action="MUSIC", body=BODY)
        await first.record_task_id(record.submission_id, "task_clocks")
        with caplog.at_level("WARNING", logger="ccapi_suno_mcp.ledger"):
            again, is_new = await second.begin_unless_duplicate(tool="suno_generate_music", action="MUSIC", body=BODY)
            fresh, _ = await second.begin_unless_duplicate(tool="suno_extend_music", action="EXTEND", body=BODY)
        ages = [ledger.now() - record.created_at for ledger in (first, second)]  # as a duplicate's message says

    assert (again.submission_id, is_new) == (record.submission_id, False)  # the same call: not sent again
    assert abs(fresh.created_at - record.created_at) < 5  # both stamped with the database's time
    assert all(0 <= age < 5 for age in ages), ages  # seconds old on either replica, not 11 minutes
    assert "this host's clock is 700 s off the ledger database's" in caplog.text
