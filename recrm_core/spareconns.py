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

``engine.dispose()`` closes the idle ones (one in use closes when it comes back); a
forked child starts with none of its own and never touches the parent's (SQLite
forbids using a connection across ``fork``).
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import Dialect


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
            pooled = engine.raw_connection()
            dbapi_connection = pooled.dbapi_connection
            pooled.detach()
        except BaseException:
            with self._lock:
                self._count -= 1
            raise
        return dbapi_connection, idle

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
        dbapi_connection.close()

    def close(self) -> None:
        """Close the idle connections (one in use closes when given back)."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._count -= len(idle)
        for dbapi_connection in idle:
            dbapi_connection.close()

    def _forget(self) -> None:
        """In a forked child: start empty. The parent's connections are kept referenced
        (``_INHERITED``), never used or closed here."""
        _INHERITED.append(self._idle)
        self._idle, self._count, self._lock = [], 0, threading.Lock()


#: each engine's spares, by its dialect (shared by its ``execution_options`` copies
#: and kept across ``dispose``, which replaces the pool)
_SPARES: weakref.WeakKeyDictionary[Dialect, SpareConnections] = weakref.WeakKeyDictionary()
#: connections a forked child inherited: kept from garbage collection, which would
#: close them in the child
_INHERITED: list[list[Any]] = []


def keep_spares(engine: Engine, limit: int) -> None:
    """Keep up to ``limit`` connections of ``engine`` (a SQLite file's) aside."""
    spares = _SPARES[engine.dialect] = SpareConnections(limit)
    event.listen(engine, "engine_disposed", lambda _engine: spares.close())


def spares_of(engine: Engine) -> SpareConnections | None:
    """The connections kept aside for ``engine``, if it keeps any."""
    return _SPARES.get(engine.dialect)


def _after_fork_in_child() -> None:
    for spares in list(_SPARES.values()):
        spares._forget()


os.register_at_fork(after_in_child=_after_fork_in_child)
