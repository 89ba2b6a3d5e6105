"""``insert_or_ignore`` and ``upsert`` (and their ``_many`` forms): one statement on
SQLite and PostgreSQL, and
writers racing on one key in separate processes all finish, with the database
deciding (one insert per key, also from batches; no lost increment)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, event, literal, select

from recrm_core import CRM, insert_or_ignore, insert_or_ignore_many, upsert, upsert_many, upserting
from recrm_core.tables import ProjectRow
from recrm_core.testing import StartLine, run_together

# Its own metadata: not one of the tables every CRM of the test run creates.
METADATA = MetaData()
AWARDS = Table(
    "upserttest_awards", METADATA,
    Column("id", Integer, primary_key=True),
    Column("event", String(32), nullable=False, unique=True),
    Column("points", Integer, nullable=False),
)
COUNTERS = Table(
    "upserttest_counters", METADATA,
    Column("key", String(32), primary_key=True),
    Column("count", Integer, nullable=False),
)
WRITERS = 3
ROUNDS = 15


def test_insert_or_ignore_keeps_the_first_row(crm: CRM) -> None:
    METADATA.create_all(crm.engine)
    with crm.unit_of_work() as uow:
        first = insert_or_ignore(uow.session, AWARDS, {"event": "signed:42", "points": 500},
                                 on=[AWARDS.c.event], returning=AWARDS.c.id)
        again = insert_or_ignore(uow.session, AWARDS, {"event": "signed:42", "points": 900},
                                 on=["event"], returning=AWARDS.c.id)
        assert isinstance(first, int) and again is None
        assert insert_or_ignore(uow.session, AWARDS, {"event": "visit:7", "points": 5},
                                on=[AWARDS.c.event]) is True
        assert insert_or_ignore(uow.session, AWARDS, {"event": "visit:7", "points": 6},
                                on=[AWARDS.c.event]) is False
    with crm.unit_of_work() as uow:
        rows = uow.session.execute(select(AWARDS.c.event, AWARDS.c.points)
                                   .order_by(AWARDS.c.event)).all()
    assert [tuple(r) for r in rows] == [("signed:42", 500), ("visit:7", 5)]


def test_upsert_inserts_then_updates(crm: CRM) -> None:
    METADATA.create_all(crm.engine)
    counts = []
    with crm.unit_of_work() as uow:
        for _ in range(3):
            counts.append(upsert(uow.session, COUNTERS, {"key": "k", "count": 1}, on=["key"],
                                 set_={"count": COUNTERS.c.count + 1}, returning=COUNTERS.c.count))
        assert upsert(uow.session, COUNTERS, {"key": "k", "count": 1}, on=[COUNTERS.c.key],
                      set_={"count": 10}) is True
        final = uow.session.scalar(select(COUNTERS.c.count).where(COUNTERS.c.key == "k"))
    assert counts == [1, 2, 3] and final == 10


def test_upsert_many_writes_each_row_as_upsert_would(crm: CRM) -> None:
    METADATA.create_all(crm.engine)
    with crm.unit_of_work() as uow:
        upsert(uow.session, COUNTERS, {"key": "b", "count": 5}, on=["key"],
               set_={"count": 0})
        counts = upsert_many(uow.session, COUNTERS,
                             [{"key": "c", "count": 2}, {"key": "b", "count": 3},
                              {"key": "a", "count": 1}],
                             on=[COUNTERS.c.key],
                             set_=lambda new: {"count": COUNTERS.c.count + new.count},
                             returning=COUNTERS.c.count)
        assert counts == [2, 8, 1]
        assert upsert_many(uow.session, COUNTERS, [{"key": "a", "count": 1},
                                                   {"key": "d", "count": 4}],
                           on=["key"], set_={"count": 10}) == [True, True]
        assert upsert_many(uow.session, COUNTERS, [], on=["key"], set_={"count": 1}) == []
        with pytest.raises(ValueError):
            upsert_many(uow.session, COUNTERS, [{"key": "a", "count": 1}] * 2, on=["key"],
                        set_={"count": 1})
        rows = uow.session.execute(select(COUNTERS.c.key, COUNTERS.c.count)
                                   .order_by(COUNTERS.c.key)).all()
    assert [tuple(r) for r in rows] == [("a", 10), ("b", 8), ("c", 2), ("d", 4)]


def test_insert_or_ignore_many_keeps_the_first_rows(crm: CRM) -> None:
    METADATA.create_all(crm.engine)
    with crm.unit_of_work() as uow:
        first = insert_or_ignore(uow.session, AWARDS, {"event": "e:2", "points": 2},
                                 on=["event"], returning=AWARDS.c.id)
        ids = insert_or_ignore_many(uow.session, AWARDS,
                                    [{"event": "e:1", "points": 1}, {"event": "e:2", "points": 9},
                                     {"event": "e:3", "points": 3}],
                                    on=[AWARDS.c.event], returning=AWARDS.c.id)
        assert ids[1] is None and isinstance(ids[0], int) and isinstance(ids[2], int)
        assert len({first, ids[0], ids[2]}) == 3
        assert insert_or_ignore_many(uow.session, AWARDS,
                                     [{"event": "e:3", "points": 7}, {"event": "e:4", "points": 4}],
                                     on=["event"]) == [False, True]
        rows = uow.session.execute(select(AWARDS.c.event, AWARDS.c.points)
                                   .order_by(AWARDS.c.event)).all()
    assert [tuple(r) for r in rows] == [("e:1", 1), ("e:2", 2), ("e:3", 3), ("e:4", 4)]


@pytest.mark.parametrize("few", [2, 100], ids=["one_statement", "row_by_row"])
def test_insert_or_ignore_many_gives_a_repeated_key_to_its_first_row(
        crm: CRM, monkeypatch: pytest.MonkeyPatch, few: int) -> None:
    # As row-by-row calls would: the first row of a key is written (or found stored),
    # each later one ignored; the same whichever path the batch's size takes.
    monkeypatch.setattr(upserting, "FEW_ROWS", few)
    METADATA.create_all(crm.engine)
    with crm.unit_of_work() as uow:
        stored = insert_or_ignore(uow.session, AWARDS, {"event": "r:0", "points": 0},
                                  on=["event"], returning=AWARDS.c.id)
        rows = [{"event": "r:1", "points": 1}, {"event": "r:0", "points": 9},
                {"event": "r:1", "points": 2}, {"event": "r:2", "points": 3},
                {"event": "r:0", "points": 8}, {"event": "r:2", "points": 4}]
        ids = insert_or_ignore_many(uow.session, AWARDS, rows, on=[AWARDS.c.event],
                                    returning=AWARDS.c.id)
        assert [i is not None for i in ids] == [True, False, False, True, False, False]
        assert len({stored, ids[0], ids[3]}) == 3
        assert insert_or_ignore_many(uow.session, AWARDS,
                                     [{"event": "r:3", "points": 5}, {"event": "r:3", "points": 6},
                                      {"event": "r:1", "points": 7}], on=["event"]) == [
            True, False, False]
        assert insert_or_ignore_many(uow.session, AWARDS, [], on=["event"]) == []
        got = uow.session.execute(select(AWARDS.c.event, AWARDS.c.points)
                                  .where(AWARDS.c.event.like("r:%"))
                                  .order_by(AWARDS.c.event)).all()
    assert [tuple(r) for r in got] == [("r:0", 0), ("r:1", 1), ("r:2", 3), ("r:3", 5)]


def _writer(url: str, start: StartLine) -> tuple[list[int], list[str]]:
    """One process: its own interpreter, CRM, engine and connections."""
    won: list[int] = []
    batched: list[str] = []
    crm = CRM(database_url=url, plugins=[])
    try:
        start.wait()
        for n in range(ROUNDS):
            # The same keys as the other writers, a batch (with a key twice) per round.
            keys = [f"batch:{n}:{k}" for k in (0, 1, 2, 1)]
            with crm.unit_of_work() as uow:
                upsert(uow.session, COUNTERS, {"key": "hits", "count": 1}, on=["key"],
                       set_={"count": COUNTERS.c.count + 1})
                if insert_or_ignore(uow.session, AWARDS, {"event": f"round:{n}", "points": 1},
                                    on=["event"], returning=AWARDS.c.id) is not None:
                    won.append(n)
                ids = insert_or_ignore_many(uow.session, AWARDS,
                                            [{"event": k, "points": 1} for k in keys],
                                            on=["event"], returning=AWARDS.c.id)
            batched.extend(k for k, i in zip(keys, ids, strict=True) if i is not None)
    finally:
        crm.close()
    return won, batched


def test_racing_processes_lose_nothing_and_insert_once(crm: CRM, recrm_database_url: str) -> None:
    METADATA.create_all(crm.engine)
    outcomes = run_together(_writer, [(recrm_database_url,)] * WRITERS)
    won = sorted(n for rounds, _ in outcomes for n in rounds)
    assert won == list(range(ROUNDS))  # every round awarded exactly once
    # Every batched key written by exactly one writer, none twice by its own batch.
    batched = sorted(k for _, keys in outcomes for k in keys)
    assert batched == sorted(f"batch:{n}:{k}" for n in range(ROUNDS) for k in range(3))
    with crm.unit_of_work() as uow:
        hits = uow.session.scalar(select(COUNTERS.c.count).where(COUNTERS.c.key == "hits"))
    assert hits == WRITERS * ROUNDS


def test_insert_or_ignore_takes_a_sql_expression_among_the_values(crm: CRM) -> None:
    # A value may be SQL (evaluated by the database), not only a Python value.
    METADATA.create_all(crm.engine)
    with crm.unit_of_work() as uow:
        assert insert_or_ignore(uow.session, AWARDS, {"event": "sql:1", "points": literal(2) + 3},
                                on=[AWARDS.c.event]) is True
        assert insert_or_ignore(uow.session, AWARDS, {"event": "sql:1", "points": 9},
                                on=[AWARDS.c.event]) is False
        assert uow.session.execute(
            select(AWARDS.c.points).where(AWARDS.c.event == "sql:1")).scalar_one() == 5


def test_insert_or_ignore_runs_on_the_drivers_cursor(crm: CRM) -> None:
    # Off SQLAlchemy's execution path (RawWrite): no execution event fires for the
    # insert, yet the session's pending rows are flushed first (as its execute did),
    # the row is written in the unit of work's transaction, the returned column comes
    # through its type (a string here), and a rollback undoes the insert.
    METADATA.create_all(crm.engine)
    executed: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        executed.append(statement)

    event.listen(crm.engine, "before_cursor_execute", seen)
    try:
        with crm.unit_of_work() as uow:
            uow.session.connection()  # the transaction begun: only the insert counts
            pending = ProjectRow(code="RAW1", name="raw")
            uow.session.add(pending)
            assert insert_or_ignore(uow.session, AWARDS, {"event": "raw:0", "points": 0},
                                    on=[AWARDS.c.event]) is True
            assert pending.id is not None and not uow.session.new
            assert [s.split()[:3] for s in executed] == [["INSERT", "INTO", "projects"]]
            executed.clear()
            got = insert_or_ignore(uow.session, AWARDS, {"event": "raw:1", "points": 1},
                                   on=[AWARDS.c.event], returning=AWARDS.c.event)
            again = insert_or_ignore(uow.session, AWARDS, {"event": "raw:1", "points": 2},
                                     on=[AWARDS.c.event], returning=AWARDS.c.event)
            # A returned column whose type processes it (SQLite stores text here).
            at = dt.datetime(2026, 3, 1, 18, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
            created = insert_or_ignore(uow.session, ProjectRow,
                                       {"code": "RAW2", "name": "raw", "created_at": at},
                                       on=[ProjectRow.code], returning=ProjectRow.created_at)
            assert executed == []
            assert (got, again) == ("raw:1", None)
            assert created == at and created.utcoffset() == dt.timedelta(0)
            assert uow.session.execute(select(AWARDS.c.points).where(
                AWARDS.c.event == "raw:1")).scalar_one() == 1
            uow.session.rollback()
    finally:
        event.remove(crm.engine, "before_cursor_execute", seen)
    with crm.unit_of_work() as uow:
        assert uow.session.execute(select(AWARDS.c.id).where(
            AWARDS.c.event == "raw:1")).first() is None
