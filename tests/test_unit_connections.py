"""The units of work that write on a SQLite file run on ``Connection`` objects kept
aside (``recrm_core.spareconns.SpareUnitConnections``): no pool checkout, no new
``Connection`` an operation, yet each unit of work gets a connection as a new one
would be (the engine's options, echo and events; nothing left open), one thread at
a time, at most the pool's size of them, none when someone listens to the pool's
checkouts, closed by ``dispose``, never used across ``fork``; on PostgreSQL the pool
as before."""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Connection, event, text
from sqlalchemy.exc import ResourceClosedError

from recrm_core import CRM, PluginError, hookimpl
from recrm_core.spareconns import SpareUnitConnections, unit_connections_of

Register = Callable[..., str]


def units(crm: CRM) -> SpareUnitConnections:
    kept = unit_connections_of(crm.engine)
    assert kept is not None
    return kept


def idle(crm: CRM) -> list[Connection]:
    return [conn for conn, _driver in units(crm)._idle]


def driver_of(conn: Connection) -> Any:
    return conn.connection.dbapi_connection


def connection_of_a_unit(crm: CRM) -> Connection:
    with crm.unit_of_work() as uow:
        conn = uow.driver
        assert conn.in_transaction() or driver_of(conn).in_transaction
        return conn


class ConnectionSeen:
    """Records the connection of every interaction's unit of work."""

    def __init__(self) -> None:
        self.seen: list[Connection] = []

    @hookimpl
    def recrm_interaction_logged(self, uow: Any) -> None:
        self.seen.append(uow.connection)


def test_operations_reuse_one_connection_without_the_pool(
    sqlite_crm: CRM, register_plugin: Register
) -> None:
    crm = sqlite_crm
    watcher = ConnectionSeen()
    register_plugin(watcher)
    cid = crm.customers.add({"mobile": "13812345678"}).customer.id
    pool: Any = crm.engine.pool
    checked_in = pool.checkedin()
    for _ in range(5):
        crm.interactions.log(cid, {"kind": "call"})
        assert pool.checkedout() == 0
    assert len({id(c) for c in watcher.seen}) == 1
    assert idle(crm) == [watcher.seen[0]] and not watcher.seen[0].in_transaction()
    assert pool.checkedin() == checked_in  # nothing taken from the pool or given to it
    assert len(crm.interactions.list(cid)) == 5


def test_a_pool_listener_sees_every_unit_of_works_connection(sqlite_crm: CRM) -> None:
    """Someone watching the pool's checkouts (the import's spaced WAL checkpoints, a
    test's tracer) gets a unit of work's connection checked out as before."""
    crm = sqlite_crm
    kept = connection_of_a_unit(crm)
    seen: list[object] = []

    def checkout(dbapi_conn: Any, *_args: Any) -> None:
        seen.append(dbapi_conn)

    event.listen(crm.engine, "checkout", checkout)
    try:
        conn = connection_of_a_unit(crm)
        assert conn is not kept and len(seen) == 1
    finally:
        event.remove(crm.engine, "checkout", checkout)
    assert connection_of_a_unit(crm) is kept


def test_engine_events_added_later_see_a_kept_connection(sqlite_crm: CRM) -> None:
    crm = sqlite_crm
    kept = connection_of_a_unit(crm)
    statements: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(crm.engine, "before_cursor_execute", before)
    try:
        with crm.unit_of_work() as uow:
            assert uow.connection is kept
            uow.connection.execute(text("SELECT 41 + 1"))
    finally:
        event.remove(crm.engine, "before_cursor_execute", before)
    assert statements == ["SELECT 41 + 1"]


class Changes:
    """A plugin that leaves its interaction's connection other than it found it."""

    def __init__(self, how: str) -> None:
        self.how = how

    @hookimpl
    def recrm_interaction_logged(self, uow: Any) -> None:
        conn = uow.connection
        if self.how == "options":
            conn.execution_options(recrm_test_option=True)
        elif self.how == "invalidate":
            conn.invalidate()
        elif self.how == "close":
            conn.close()


@pytest.mark.parametrize(("how", "error", "logged"), [
    ("options", None, 1),
    # the next statement (the webhooks' read) finds the transaction gone
    ("invalidate", PluginError, 0),
    ("close", ResourceClosedError, 0),
])
def test_a_connection_left_changed_is_not_handed_out_again(
    sqlite_crm: CRM, register_plugin: Register, how: str, error: type[Exception] | None,
    logged: int,
) -> None:
    crm = sqlite_crm
    cid = crm.customers.add({"mobile": "13812345678"}).customer.id
    [kept] = idle(crm)
    register_plugin(Changes(how), name="changes")
    if error is None:
        crm.interactions.log(cid, {"kind": "call"})
    else:
        with pytest.raises(error):
            crm.interactions.log(cid, {"kind": "call"})
    assert kept not in idle(crm) and kept.closed
    assert units(crm)._count == len(idle(crm))
    crm.pm.unregister(name="changes")
    conn = connection_of_a_unit(crm)
    assert conn is not kept and conn.get_execution_options() == {}
    assert len(crm.interactions.list(cid)) == logged


def test_echo_switched_on_later_is_followed(sqlite_crm: CRM,
                                            caplog: pytest.LogCaptureFixture) -> None:
    crm = sqlite_crm
    kept = connection_of_a_unit(crm)
    crm.engine.echo = True
    try:
        with caplog.at_level(logging.INFO, logger="sqlalchemy.engine"), \
                crm.unit_of_work() as uow:
            assert uow.connection is not kept
            uow.connection.execute(text("SELECT 43"))
    finally:
        crm.engine.echo = False
    assert any("SELECT 43" in r.getMessage() for r in caplog.records)
    assert kept.closed


def test_an_error_rolls_back_and_the_connection_serves_again(sqlite_crm: CRM) -> None:
    crm = sqlite_crm
    cid = crm.customers.add({"mobile": "13812345678"}).customer.id
    [kept] = idle(crm)
    with pytest.raises(RuntimeError), crm.unit_of_work() as uow:
        crm.interactions.log_many_in(uow, [{"customer_id": cid, "kind": "call"}])
        raise RuntimeError("down")
    assert crm.interactions.list(cid) == []
    assert idle(crm) == [kept] and not driver_of(kept).in_transaction
    crm.interactions.log(cid, {"kind": "visit"})
    assert [i.kind for i in crm.interactions.list(cid)] == ["visit"]


def test_threads_take_one_connection_each_up_to_the_pools_size(
    sqlite_crm: CRM, monkeypatch: pytest.MonkeyPatch
) -> None:
    crm = sqlite_crm
    ids = [crm.customers.add({"mobile": f"1381234{i:04d}"}).customer.id for i in range(8)]
    threads, rounds = 12, 15
    start = threading.Barrier(threads)
    errors: list[BaseException] = []
    in_use: set[int] = set()  # ids of the Connections handed out and not given back
    overlap: list[int] = []
    guard = threading.Lock()
    take_for, give_back = SpareUnitConnections.take_for, SpareUnitConnections.give_back

    def watched_take(self: SpareUnitConnections, engine: Any) -> Any:
        taken = take_for(self, engine)
        if taken is not None:
            with guard:
                if id(taken[0][0]) in in_use:
                    overlap.append(id(taken[0][0]))
                in_use.add(id(taken[0][0]))
        return taken

    def watched_give_back(self: SpareUnitConnections, kept: Any, idle: Any) -> None:
        with guard:
            in_use.discard(id(kept[0]))
        give_back(self, kept, idle)

    monkeypatch.setattr(SpareUnitConnections, "take_for", watched_take)
    monkeypatch.setattr(SpareUnitConnections, "give_back", watched_give_back)

    def work(n: int) -> None:
        try:
            start.wait()
            for r in range(rounds):
                crm.interactions.log(ids[(n + r) % len(ids)], {"kind": "call"})
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == [] and overlap == [] and not in_use
    limit = crm.engine.pool.size()  # type: ignore[attr-defined]
    assert 1 <= units(crm)._count <= limit
    assert len(idle(crm)) == units(crm)._count
    assert sum(len(crm.interactions.list(cid)) for cid in ids) == threads * rounds


def test_dispose_closes_them_and_the_crm_still_writes(sqlite_crm: CRM) -> None:
    crm = sqlite_crm
    cid = crm.customers.add({"mobile": "13812345678"}).customer.id
    [kept] = idle(crm)
    crm.engine.dispose()
    assert kept.closed and idle(crm) == [] and units(crm)._count == 0
    crm.interactions.log(cid, {"kind": "call"})
    assert len(idle(crm)) == 1 and idle(crm)[0] is not kept


def test_one_in_use_during_dispose_closes_when_given_back(sqlite_crm: CRM) -> None:
    crm = sqlite_crm
    with crm.unit_of_work() as uow:
        conn = uow.driver
        crm.engine.dispose()
    assert conn.closed and idle(crm) == [] and units(crm)._count == 0


def test_a_tuned_pool_connection_stays_in_the_pool(sqlite_crm: CRM) -> None:
    """The connections kept aside are new ones, never taken from the pool."""
    crm = sqlite_crm
    crm.engine.dispose()
    with crm.engine.connect() as conn:
        driver: Any = conn.connection.dbapi_connection
        driver.execute("PRAGMA cache_size=-1234")
    kept = connection_of_a_unit(crm)
    assert driver_of(kept) is not driver
    with crm.engine.connect() as conn:
        assert conn.connection.dbapi_connection is driver
    cache = driver_of(kept).execute("PRAGMA cache_size").fetchone()[0]
    assert cache == -65536  # the engine's connect-time pragmas ran on it


def _log_in_child(crm: CRM, cid: int, inherited: int, out: Any) -> None:
    try:
        fresh = not any(id(c) == inherited for c in idle(crm))
        crm.interactions.log(cid, {"kind": "call"})
        out.send((fresh, [id(c) for c in idle(crm)]))
    except BaseException as exc:  # report, whatever it is
        out.send(repr(exc))


def test_a_forked_child_opens_its_own(sqlite_crm: CRM) -> None:
    crm = sqlite_crm
    cid = crm.customers.add({"mobile": "13812345678"}).customer.id
    [kept] = idle(crm)
    ctx = multiprocessing.get_context("fork")
    theirs, ours = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_log_in_child, args=(crm, cid, id(kept), ours))
    child.start()
    answer = theirs.recv()
    child.join(timeout=30)
    assert child.exitcode == 0
    fresh, child_idle = answer
    assert fresh and len(child_idle) == 1
    # the parent's connection is untouched and still serves it
    assert idle(crm) == [kept]
    crm.interactions.log(cid, {"kind": "visit"})
    assert sorted(i.kind for i in crm.interactions.list(cid)) == ["call", "visit"]


def test_postgresql_keeps_none(crm: CRM, recrm_backend: str) -> None:
    if recrm_backend != "postgresql":
        pytest.skip("PostgreSQL's units of work use the pool")
    assert unit_connections_of(crm.engine) is None
    cid = crm.customers.add({"mobile": "13812345678"}).customer.id
    crm.interactions.log(cid, {"kind": "call"})
    assert crm.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
