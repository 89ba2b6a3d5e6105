"""Driver connections of a SQLite file kept aside for single statements outside any
transaction (``RawSelect.pooled``: ``find`` without an actor).

Checking a connection out of SQLAlchemy's pool and back costs ~11 µs on SQLite (the
fairy and its record, the queue's lock, the rollback on return): half again the
indexed statement it serves (bench/README.md, "Session 8, look8"). Here a few
connections, taken from the pool once and detached from it (``detach``: the pool's
own way to give a connection up, its connect-time pragmas and functions already
set), wait on a list: ``pop`` and ``append`` are atomic, so a connection serves one
thread at a time without a lock, and a statement of its own never leaves a
transaction open behind it. Only for SQLite files: a PostgreSQL connection is a
server's resource, and a ``:memory:`` database has one connection, shared
(StaticPool). At most as many as the pool holds, so a burst of threads (the HTTP
API's) falls back to the pool instead of opening a page cache each.

The units of work that write (``recrm_core.db.unit_of_work``) keep SQLAlchemy
``Connection`` objects aside the same way (:class:`SpareUnitConnections`): checking
one out of the pool, wrapping it and closing it cost ~11 µs of a single-row
operation's ~100 (bench/README.md, "Session 9, ops9"), and nearly every operation
runs its statements on the driver beneath it anyway.

``engine.dispose()`` closes the idle ones (one in use closes when it comes back); a
forked child starts with none of its own and never touches the parent's (SQLite
forbids using a connection across ``fork``).
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.pool import PoolProxiedConnection


def _fresh(engine: Engine) -> PoolProxiedConnection:
    """A new connection of ``engine``'s, to be given up (``detach``): opened by a pool
    made as the engine's (``recreate``: its creator, its connect-time pragmas and
    functions), never one the pool holds, which a caller may have tuned (a PRAGMA on
    a pool connection stays with the pool)."""
    return engine.pool.recreate().connect()


class SpareConnections:
    """The connections kept aside for one engine (and its ``execution_options``
    copies, which share its dialect)."""

    __slots__ = ("__weakref__", "_count", "_idle", "_limit", "_lock")

    def __init__(self, limit: int) -> None:
        self._idle: list[Any] = []
        self._count = 0  # idle and in use
        self._limit = limit
        self._lock = threading.Lock()

    def take(self, engine: Engine) -> tuple[Any, list[Any]] | None:
        """An idle driver connection (a new one while fewer than the limit exist) and
        the list to give it back to; None at the limit (use the pool)."""
        idle = self._idle
        try:
            return idle.pop(), idle
        except IndexError:
            pass
        with self._lock:
            if self._count >= self._limit:
                return None
            self._count += 1
        try:
            kept = self._open(engine)
        except BaseException:
            with self._lock:
                self._count -= 1
            raise
        return kept, idle

    @staticmethod
    def _open(engine: Engine) -> Any:
        """A new driver connection of ``engine``'s (:func:`_fresh`)."""
        pooled = _fresh(engine)
        dbapi_connection = pooled.dbapi_connection
        pooled.detach()
        return dbapi_connection

    def give_back(self, dbapi_connection: Any, idle: list[Any]) -> None:
        """Return a connection ``take`` gave, after its statement."""
        if dbapi_connection.in_transaction:
            # Never so after one SELECT in autocommit mode; as the pool's reset on
            # return would, no transaction outlives its statement.
            dbapi_connection.rollback()
        if idle is self._idle:
            idle.append(dbapi_connection)
        else:  # closed meanwhile (dispose)
            self.discard(dbapi_connection)

    def discard(self, dbapi_connection: Any) -> None:
        """Close a connection ``take`` gave instead of giving it back (after an error:
        as the pool invalidates, a fresh one replaces it)."""
        with self._lock:
            self._count -= 1
        self._close(dbapi_connection)

    @staticmethod
    def _close(kept: Any) -> None:
        kept.close()

    def close(self) -> None:
        """Close the idle connections (one in use closes when given back)."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._count -= len(idle)
        for kept in idle:
            self._close(kept)

    def _forget(self) -> None:
        """In a forked child: start empty. The parent's connections are kept referenced
        (``_INHERITED``), never used or closed here."""
        _INHERITED.append(self._idle)
        self._idle, self._count, self._lock = [], 0, threading.Lock()


class SpareUnitConnections(SpareConnections):
    """SQLAlchemy ``Connection`` objects kept aside for the units of work that write,
    each with its driver connection (which ``Connection.invalidate`` lets go of
    without closing it, a detached connection having no pool record to close it).

    One is handed out only as a new one would be: of the engine asked, with its
    echo, and no pool event listened to (a listener on the pool's checkouts or
    check-ins, or on the engine's ``engine_connect``, wants to see each unit of work's
    connection: the caller then uses the pool). One given back other than it was
    handed out (closed, invalidated, its execution options changed, a transaction
    left open) is closed instead.
    """

    __slots__ = ()

    @staticmethod
    def _open(engine: Engine) -> tuple[Connection, Any]:
        pooled = _fresh(engine)
        conn = Connection(engine, connection=pooled)
        conn.detach()
        return conn, pooled.dbapi_connection

    @staticmethod
    def _close(kept: tuple[Connection, Any]) -> None:
        conn, dbapi_connection = kept
        try:
            conn.close()
        finally:
            # Closed whatever became of the Connection (invalidated, it let go of it
            # still in its transaction, holding SQLite's write lock).
            dbapi_connection.close()

    def take_for(self, engine: Engine) -> tuple[tuple[Connection, Any], list[Any]] | None:
        """A connection for a unit of work on ``engine`` (with its driver connection)
        and the list to give it back to; None when the pool must serve (see the
        class)."""
        pool = engine.pool
        if pool.dispatch.checkout or pool.dispatch.checkin or pool.dispatch.reset \
                or engine.dispatch.engine_connect:
            return None
        taken = self.take(engine)
        if taken is None:
            return None
        conn = taken[0][0]
        if conn.engine is engine and \
                conn._echo == engine._should_log_info():  # echo switched since made
            return taken
        self.discard(taken[0])
        return None

    def give_back(self, kept: tuple[Connection, Any], idle: list[Any]) -> None:
        """Return a connection ``take_for`` gave, its unit of work ended."""
        conn, dbapi_connection = kept
        if idle is not self._idle or conn.closed or conn.invalidated \
                or conn.in_transaction() or dbapi_connection.in_transaction \
                or conn._execution_options is not conn.engine._execution_options:
            # (idle replaced: closed meanwhile, by dispose)
            self.discard(kept)
        else:
            idle.append(kept)


#: each engine's spares, by its dialect (shared by its ``execution_options`` copies
#: and kept across ``dispose``, which replaces the pool)
_SPARES: weakref.WeakKeyDictionary[Dialect, SpareConnections] = weakref.WeakKeyDictionary()
#: each engine's connections for units of work, by its dialect
_UNITS: weakref.WeakKeyDictionary[Dialect, SpareUnitConnections] = weakref.WeakKeyDictionary()
#: connections a forked child inherited: kept from garbage collection, which would
#: close them in the child
_INHERITED: list[list[Any]] = []


def keep_spares(engine: Engine, limit: int) -> None:
    """Keep up to ``limit`` driver connections of ``engine`` (a SQLite file's) aside,
    and up to ``limit`` ``Connection`` objects for its units of work."""
    spares = _SPARES[engine.dialect] = SpareConnections(limit)
    units = _UNITS[engine.dialect] = SpareUnitConnections(limit)

    def disposed(_engine: Engine) -> None:
        spares.close()
        units.close()

    event.listen(engine, "engine_disposed", disposed)


def spares_of(engine: Engine) -> SpareConnections | None:
    """The connections kept aside for ``engine``, if it keeps any."""
    return _SPARES.get(engine.dialect)


def unit_connections_of(engine: Engine) -> SpareUnitConnections | None:
    """The ``Connection`` objects kept aside for ``engine``'s units of work, if any."""
    return _UNITS.get(engine.dialect)


def _after_fork_in_child() -> None:
    for spares in [*_SPARES.values(), *_UNITS.values()]:
        spares._forget()


os.register_at_fork(after_in_child=_after_fork_in_child)
