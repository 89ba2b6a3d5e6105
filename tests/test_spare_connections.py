"""``find`` without an actor reads a SQLite file on a connection kept aside from the
pool (``recrm_core.spareconns``): no pool checkout, one thread per connection at a
time, at most the pool's size of them, closed by ``dispose``, never used across
``fork``; on PostgreSQL (and anything else) the pool as before."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import column, event, select, table
from sqlalchemy.exc import DBAPIError

from recrm_core import CRM
from recrm_core.rawsql import RawSelect
from recrm_core.spareconns import SpareConnections, spares_of


def spares(crm: CRM) -> SpareConnections:
    kept = spares_of(crm.engine)
    assert kept is not None
    return kept


def idle(crm: CRM) -> list[Any]:
    return list(spares(crm)._idle)


@pytest.fixture
def checkouts(crm: CRM) -> Iterator[list[object]]:
    """Each pool checkout of ``crm``'s engine (after ``dispose`` too: pool events move
    to the new pool)."""
    seen: list[object] = []

    def count(*_args: object) -> None:
        seen.append(_args[0])

    event.listen(crm.engine.pool, "checkout", count)
    try:
        yield seen
    finally:
        event.remove(crm.engine.pool, "checkout", count)


def test_find_checks_nothing_out_of_the_pool(sqlite_crm: CRM,
                                             checkouts: list[object]) -> None:
    crm = sqlite_crm
    cid = crm.customers.add({"mobile": "13812345678"}).customer.id
    assert [c.id for c in crm.customers.find(mobile="13812345678")] == [cid]
    checkouts.clear()
    for _ in range(20):
        assert [c.id for c in crm.customers.find(mobile="138 1234 5678")] == [cid]
    assert crm.customers.find(mobile="13912345678") == []
    assert checkouts == []
    assert len(idle(crm)) == 1


def test_find_sees_what_commits_after_it(sqlite_crm: CRM) -> None:
    """The connection kept aside holds no snapshot between statements."""
    crm = sqlite_crm
    assert crm.customers.find(mobile="13812345678") == []
    cid = crm.customers.add({"mobile": "13812345678", "name": "王伟"}).customer.id
    assert [c.name for c in crm.customers.find(mobile="13812345678")] == ["王伟"]
    crm.customers.update(cid, {"name": "李娜"})
    assert [c.name for c in crm.customers.find(mobile="13812345678")] == ["李娜"]
    assert not idle(crm)[0].in_transaction


def test_threads_take_one_connection_each_up_to_the_pools_size(sqlite_crm: CRM) -> None:
    crm = sqlite_crm
    mobiles = [f"1381234{i:04d}" for i in range(8)]
    ids = {m: crm.customers.add({"mobile": m}).customer.id for m in mobiles}
    threads, rounds = 16, 40
    start = threading.Barrier(threads)
    wrong: list[tuple[str, list[int]]] = []
    errors: list[BaseException] = []
    in_use: dict[int, int] = {}  # id of a driver connection -> thread using it
    overlap: list[int] = []
    guard = threading.Lock()
    original_run = RawSelect._run

    def watched_run(self: RawSelect, dialect: Any, dbapi_connection: Any,
                    params: dict[str, Any]) -> list[tuple[Any, ...]]:
        me = threading.get_ident()
        with guard:
            if in_use.setdefault(id(dbapi_connection), me) != me:
                overlap.append(id(dbapi_connection))
        try:
            return original_run(self, dialect, dbapi_connection, params)
        finally:
            with guard:
                del in_use[id(dbapi_connection)]

    def work(n: int) -> None:
        try:
            start.wait()
            for r in range(rounds):
                m = mobiles[(n + r) % len(mobiles)]
                got = [c.id for c in crm.customers.find(mobile=m)]
                if got != [ids[m]]:
                    wrong.append((m, got))
        except BaseException as exc:
            errors.append(exc)

    RawSelect._run = watched_run  # type: ignore[method-assign]
    try:
        workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        RawSelect._run = original_run  # type: ignore[method-assign]
    assert errors == [] and wrong == [] and overlap == []
    limit = crm.engine.pool.size()  # type: ignore[attr-defined]
    assert 1 <= spares(crm)._count <= limit
    assert len(idle(crm)) == spares(crm)._count


def test_dispose_closes_them_and_the_crm_still_finds(sqlite_crm: CRM) -> None:
    crm = sqlite_crm
    cid = crm.customers.add({"mobile": "13812345678"}).customer.id
    crm.customers.find(mobile="13812345678")
    [kept] = idle(crm)
    crm.engine.dispose()
    with pytest.raises(sqlite3.ProgrammingError):
        kept.execute("SELECT 1")
    assert idle(crm) == [] and spares(crm)._count == 0
    assert [c.id for c in crm.customers.find(mobile="13812345678")] == [cid]
    assert len(idle(crm)) == 1 and idle(crm)[0] is not kept


def test_one_in_use_during_dispose_closes_when_given_back(sqlite_crm: CRM) -> None:
    crm = sqlite_crm
    kept = spares(crm)
    taken = kept.take(crm.engine)
    assert taken is not None
    conn, back_to = taken
    crm.engine.dispose()
    kept.give_back(conn, back_to)
    with pytest.raises(sqlite3.ProgrammingError):
        conn.execute("SELECT 1")
    assert idle(crm) == [] and kept._count == 0


def test_a_failed_statement_discards_its_connection(sqlite_crm: CRM) -> None:
    crm = sqlite_crm
    crm.customers.find(mobile="13812345678")
    [kept] = idle(crm)
    missing = RawSelect(select(column("x")).select_from(table("no_such_table")))
    with pytest.raises(DBAPIError):
        missing.pooled(crm.engine, {})
    with pytest.raises(sqlite3.ProgrammingError):
        kept.execute("SELECT 1")
    assert idle(crm) == [] and spares(crm)._count == 0
    assert crm.customers.find(mobile="13812345678") == []


def _find_in_child(crm: CRM, inherited: int, out: Any) -> None:
    try:
        fresh = not any(id(c) == inherited for c in spares(crm)._idle)
        found = [c.id for c in crm.customers.find(mobile="13812345678")]
        out.send((fresh, found, [id(c) for c in spares(crm)._idle]))
    except BaseException as exc:  # report, whatever it is
        out.send(repr(exc))


def test_a_forked_child_opens_its_own(sqlite_crm: CRM) -> None:
    crm = sqlite_crm
    cid = crm.customers.add({"mobile": "13812345678"}).customer.id
    crm.customers.find(mobile="13812345678")
    [kept] = idle(crm)
    ctx = multiprocessing.get_context("fork")
    theirs, ours = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_find_in_child, args=(crm, id(kept), ours))
    child.start()
    answer = theirs.recv()
    child.join(timeout=30)
    assert child.exitcode == 0
    fresh, found, child_idle = answer
    assert fresh and found == [cid] and len(child_idle) == 1
    # the parent's connection is untouched and still serves it
    assert idle(crm) == [kept]
    assert [c.id for c in crm.customers.find(mobile="13812345678")] == [cid]


def test_postgresql_keeps_none(crm: CRM, recrm_backend: str) -> None:
    if recrm_backend != "postgresql":
        pytest.skip("PostgreSQL's lookups use the pool")
    assert spares_of(crm.engine) is None


def test_a_memory_database_keeps_none() -> None:
    with CRM(database_url="sqlite://", plugins=[], create_schema=True) as crm:
        assert spares_of(crm.engine) is None
        cid = crm.customers.add({"mobile": "13812345678"}).customer.id
        assert [c.id for c in crm.customers.find(mobile="13812345678")] == [cid]
