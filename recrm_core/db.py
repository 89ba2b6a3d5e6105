"""The shared SQLAlchemy ``Base``, the engine factory and the unit of work.

Every table, the core's and each plugin's, is declared once on :class:`Base`, whose
naming convention gives constraints stable names (Alembic relies on them later).
"""

from __future__ import annotations

import datetime as dt
import logging
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import InitVar, dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    MetaData,
    create_engine,
    event,
)
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.pool import QueuePool, StaticPool
from sqlalchemy.types import TypeDecorator

from .errors import ConfigError
from .spareconns import SpareUnitConnections, keep_spares, unit_connections_of

if TYPE_CHECKING:
    from .crm import CRM
    from .models import Actor
    from .plugins import HookBatch

#: execution option marking a connection's transactions as read-only
READONLY_OPTION = "recrm_readonly"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base for every recrm table (core and plugins)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


_V = TypeVar("_V")

#: ids are INTEGER columns: 32-bit on PostgreSQL, so anything larger names nothing
MAX_ID = 2**31 - 1


def valid_id(value: int) -> bool:
    """Whether ``value`` can be a row id (larger numbers would overflow the driver)."""
    return 0 < value <= MAX_ID


#: values per IN list, well below SQLite's bound-variable limit
IN_CHUNK = 500


def chunks(values: list[_V], size: int = IN_CHUNK) -> Iterator[list[_V]]:
    """``values`` in slices for ``IN (...)`` lists."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Stores UTC; always returns aware UTC datetimes, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; recrm stores aware UTC datetimes")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)  # type: ignore[no-any-return]
        return value.astimezone(dt.UTC)  # type: ignore[no-any-return]


def digits_only(text: object) -> str | None:
    """The decimal digits of ``text`` in order, full-width ones as ASCII (NFKC)."""
    if text is None:
        return None
    import unicodedata

    return "".join(ch for ch in unicodedata.normalize("NFKC", str(text)) if "0" <= ch <= "9")


def database_url(url: str) -> URL:
    """``url`` parsed, or ConfigError naming it: SQLAlchemy raises ArgumentError for a
    malformed URL and ValueError for a malformed port or host (``@h:abc``, ``@[::1``)."""
    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(f"database URL {url!r} is not a valid URL") from None


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
    parsed = database_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() != "sqlite":
        # psycopg logs "error ignored terminating <Pipeline ...>" when a batch that lost
        # a race (UNIQUE violation, deadlock) abandons its executemany pipeline; the
        # primary error is raised and retried, so the secondary one is noise on
        # stderr. A handler of our own keeps logging's last-resort printer away;
        # an integrator who configures logging still sees it.
        logging.getLogger("psycopg").addHandler(logging.NullHandler())
        try:
            return create_engine(parsed, pool_pre_ping=True)
        except (ArgumentError, NoSuchModuleError, ImportError) as exc:
            raise ConfigError(f"database URL {url!r}: {exc}") from None
    memory = parsed.database in (None, "", ":memory:")
    kwargs: dict[str, Any] = {"connect_args": {"timeout": 30}}
    if memory:
        kwargs["poolclass"] = StaticPool
        kwargs["connect_args"]["check_same_thread"] = False
    engine = create_engine(parsed, **kwargs)
    if isinstance(engine.pool, QueuePool):  # a file: not the one shared :memory: connection
        keep_spares(engine, engine.pool.size())

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, open transactions (needed for SAVEPOINT too).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        # A 64 MiB page cache (the default is 2 MiB), allocated only as used: bulk
        # imports insert into several indexes with random keys, and once those
        # outgrow the cache every insert re-reads pages.
        cur.execute("PRAGMA cache_size=-65536")
        cur.close()
        # The erasure's verification compares digits "in any spelling" (138 1234 5678,
        # full-width digits): PostgreSQL does it with regexp_replace, SQLite with this.
        dbapi_conn.create_function("recrm_digits", 1, digits_only, deterministic=True)

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn: Any) -> None:
        # Take the write lock up front: two deferred transactions that both try to
        # upgrade to writing would otherwise fail with "database is locked" at once
        # instead of waiting on the busy timeout. Read-only units of work take no
        # write lock, so readers never queue behind a long import batch (WAL lets
        # them read the last committed state meanwhile).
        if conn in _BEGUN_ON_DRIVER:
            # A unit of work's transaction, begun on the driver (UnitOfWork.driver):
            # SQLAlchemy takes it over as it is.
            _BEGUN_ON_DRIVER.discard(conn)
            return
        begin_on_driver(conn.dialect, conn.connection.dbapi_connection,
                        bool(conn.get_execution_options().get(READONLY_OPTION)))

    return engine


#: the units of work's connections whose transaction was begun on the driver and that
#: SQLAlchemy's ``Connection`` has not taken over yet (its begin must then issue no
#: BEGIN). Only these: a transaction found open on any other connection is an error,
#: never one to join.
_BEGUN_ON_DRIVER: weakref.WeakSet[Connection] = weakref.WeakSet()


def begin_on_driver(dialect: Dialect, dbapi_connection: Any, readonly: bool) -> None:
    """Begin a transaction on the driver's connection.

    SQLite: ``BEGIN IMMEDIATE`` (``BEGIN`` for a read-only one), on the driver's
    connection: through ``exec_driver_sql`` it cost ~10 µs of SQLAlchemy's execution
    path (27 against 37 µs a Connection's begin and commit). PostgreSQL: nothing
    (psycopg begins at the first statement). Errors come as SQLAlchemy's.
    """
    if dialect.name != "sqlite":
        return
    sql = "BEGIN" if readonly else "BEGIN IMMEDIATE"
    dbapi = dialect.loaded_dbapi
    try:
        dbapi_connection.execute(sql)
    except dbapi.Error as exc:
        raise DBAPIError.instance(sql, (), exc, dbapi.Error) from exc


def _end_on_driver(conn: Connection, commit: bool) -> None:
    """Commit or roll back on the driver's connection: the transaction a unit of work
    began there (SQLAlchemy never took it over), or what a failed commit left open.
    Errors come as SQLAlchemy's, as from ``Connection.commit``; a lost connection is
    invalidated, so the pool does not hand it out again."""
    dialect = conn.dialect
    dbapi_connection: Any = conn.connection.dbapi_connection
    dbapi_error = dialect.loaded_dbapi.Error
    try:
        if commit:
            dbapi_connection.commit()
        else:
            dbapi_connection.rollback()
    except dbapi_error as exc:
        lost = dialect.is_disconnect(exc, dbapi_connection, None)
        if lost:
            conn.invalidate(exc)
        raise DBAPIError.instance("COMMIT" if commit else "ROLLBACK", (), exc, dbapi_error,
                                  connection_invalidated=lost, dialect=dialect) from exc


@dataclass
class UnitOfWork:
    """One operation's transaction, handed to every data hook it fires.

    Plugins write through ``session`` (ORM) or ``connection`` (Core; the same as
    ``session.connection()``); everything commits together or rolls back together.

    The transaction begins at the first statement. The ``Session`` is made on the
    first use of ``session``, on the unit of work's connection and in its
    transaction; the core's own paths write through ``connection``, so an
    operation whose hooks use no ORM makes none. The core's hot paths run their
    statements through ``driver``: the transaction is then begun and ended on the
    driver's connection, and SQLAlchemy's ``Connection`` takes it over only when
    something asks for ``connection`` or ``session`` (or executes Core on it).
    """

    # A Session with its begin, commit and close cost ~40 µs a unit of work on SQLite,
    # a quarter of a single-row operation (bench/README.md, "session 4"); the
    # Connection's own transaction and events ~10 µs more ("Session 5, ops").

    #: the CRM running the operation (settings, services)
    crm: CRM
    #: the connection the transaction runs on (``connection`` below): the pool's,
    #: or one kept aside for units of work (``spareconns``)
    bound: InitVar[Connection]
    #: who performs the operation, if the caller said
    actor: Actor | None = None
    #: free-form scratch space shared by the hooks of one operation
    state: dict[str, Any] = field(default_factory=dict)
    #: the batch hooks' pending changes while ``crm.hooks.batched(self)`` is open
    #: (``None`` otherwise: each change is then a batch of its own)
    hook_batch: HookBatch | None = field(default=None, init=False, repr=False)

    def __post_init__(self, bound: Connection) -> None:
        self._connection = bound
        self._session: Session | None = None
        # A transaction open on the driver that SQLAlchemy's Connection does not know of.
        self._on_driver = False

    @property
    def session(self) -> Session:
        """The operation's SQLAlchemy session: write your rows here (made on first
        use, on the transaction's connection)."""
        session = self._session
        if session is None:
            conn = self._taken_over()
            # control_fully: the session begins, commits and rolls back the
            # connection's transaction (joining it if Core began it), as a session
            # bound to the engine would its own; so a ``session.rollback()`` undoes
            # the Core writes made before it too.
            session = self._session = Session(
                conn, expire_on_commit=False, join_transaction_mode="control_fully")
            if conn.in_transaction():
                # Take over the Core writes made so far now, so that a rollback of
                # the session undoes them as well.
                session.connection()
        return session

    @property
    def connection(self) -> Connection:
        """The transaction's connection, for Core and the driver's cursor
        (``RawSelect``, ``RawWrite``), its transaction begun; the session's pending
        ORM changes are flushed first if a session was made (Core does not autoflush,
        and a read must see what a hook wrote through the ORM)."""
        session = self._session
        if session is not None:
            session.flush()
            # Begun through the session, if not yet: its rollback undoes ours.
            return session.connection()
        conn = self._taken_over()
        if not conn.in_transaction():
            # The driver's cursor bypasses SQLAlchemy's autobegin.
            conn.begin()
        return conn

    @property
    def driver(self) -> Connection:
        """The connection for the core's own statements: ``RawSelect``, ``RawWrite``
        and Core ``execute`` (whose autobegin takes the transaction over). Until
        ``connection`` or ``session`` is asked for, the transaction is begun on the
        driver and SQLAlchemy's ``Connection`` does not know of it, so never hand this
        to code that begins, commits or asks ``in_transaction()``: use ``connection``
        there. The session's pending ORM changes are flushed first, as by
        ``connection``."""
        if self._session is not None:
            return self.connection
        conn = self._connection
        if not self._on_driver and not conn.in_transaction():
            begin_on_driver(conn.dialect, conn.connection.dbapi_connection,
                            bool(conn.get_execution_options().get(READONLY_OPTION)))
            self._on_driver = True
            # Core's autobegin on it (or ``connection``) takes it over without a BEGIN.
            _BEGUN_ON_DRIVER.add(conn)
        return conn

    def _taken_over(self) -> Connection:
        """The connection, SQLAlchemy's ``Connection`` now holding the transaction
        ``driver`` began, if one is open (its begin finds it open on the driver)."""
        conn = self._connection
        if self._on_driver:
            if not conn.in_transaction():
                conn.begin()
            self._on_driver = False
            _BEGUN_ON_DRIVER.discard(conn)
        return conn

    def check_staff(self, staff_ids: Iterable[str | None], *, assigned: bool = False) -> None:
        """Refuse staff ids that may take no new assignment (the directory's rule,
        :func:`recrm_core.directory.check_assignable`; ``assigned``: as an owner or an
        assignee), read through ``driver``."""
        named = [s for s in staff_ids if s]
        if not named:
            return  # most operations name nobody: no import, no rule to ask
        from .directory import check_assignable

        check_assignable(self.driver, self.crm.config.require_known_staff, named,
                         assigned=assigned)

    @property
    def has_session(self) -> bool:
        """Whether :attr:`session` was used (so a test can tell a path made none)."""
        return self._session is not None

    def _finish(self, commit: bool) -> None:
        """Commit (the session flushed first) or roll back everything: the session's
        transaction, then whatever the connection still holds (Core writes made
        when no session had begun one, or the driver's transaction nobody took over)."""
        session, conn = self._session, self._connection
        try:
            if session is not None:
                if commit:
                    session.commit()
                else:
                    session.rollback()
            if conn.in_transaction():
                if commit:
                    conn.commit()
                else:
                    conn.rollback()
            elif self._on_driver and commit:
                _end_on_driver(conn, True)
            if not commit and not conn.invalidated:
                # Whatever the driver still holds: the transaction begun on it that
                # SQLAlchemy never took over, or what a failed COMMIT left open (SQLite
                # keeps it after a deferred foreign key fails, and SQLAlchemy, its
                # transaction ended, would return the connection to the pool with it);
                # a no-op with nothing open, on both drivers.
                _end_on_driver(conn, False)
            self._on_driver = False
        finally:
            _BEGUN_ON_DRIVER.discard(conn)
            if session is not None:
                session.close()


def read_engine(crm: CRM) -> Engine:
    """``crm.engine`` marked for read-only transactions (same pool, plain ``BEGIN``
    on SQLite); built once and rebuilt if the CRM's engine is replaced."""
    cached: tuple[Engine, Engine] | None = getattr(crm, "_recrm_read_engine", None)
    if cached is None or cached[0] is not crm.engine:
        cached = (crm.engine, crm.engine.execution_options(**{READONLY_OPTION: True}))
        crm._recrm_read_engine = cached  # type: ignore[attr-defined]
    return cached[1]


def unit_of_work(
    crm: CRM, actor: Actor | None = None, *, readonly: bool = False
) -> _UnitOfWorkBlock:
    """A transaction; ``readonly`` ones take no write lock on SQLite, for reads that
    write nothing (a write in one still works, but may fail at once under
    contention instead of waiting for the lock)."""
    if readonly:
        return _UnitOfWorkBlock(read_engine(crm), crm, actor, None)
    engine = crm.engine
    return _UnitOfWorkBlock(engine, crm, actor, unit_connections_of(engine))


class _UnitOfWorkBlock:
    """``with unit_of_work(...) as uow``: a connection and the unit of work on it;
    commits when the block ends, rolls back if it raises (or if the commit does),
    then gives the connection back.

    The connection is one kept aside for units of work (a SQLite file's writers:
    ``spareconns.SpareUnitConnections``) while one is free, else the pool's. A class
    rather than a ``@contextmanager`` generator: every operation makes one, and the
    generator and its wrapper cost ~1 µs more a unit of work."""

    __slots__ = ("_actor", "_bind", "_conn", "_crm", "_idle", "_kept", "_spares", "_uow")

    def __init__(self, bind: Engine, crm: CRM, actor: Actor | None,
                 spares: SpareUnitConnections | None) -> None:
        self._bind, self._crm, self._actor, self._spares = bind, crm, actor, spares

    def __enter__(self) -> UnitOfWork:
        spares = self._spares
        taken = spares.take_for(self._bind) if spares is not None else None
        if taken is None:
            conn, self._kept = self._bind.connect(), None
        else:
            self._kept, self._idle = taken
            conn = taken[0][0]
        uow = UnitOfWork(self._crm, conn, self._actor)
        try:
            if self._actor is not None:
                # An actor who left acts no more; with require_known_staff, one the
                # directory lacks never acted.
                uow.check_staff([self._actor.staff_id])
        except BaseException:
            try:
                uow._finish(commit=False)
            finally:
                self._release(conn)
            raise
        self._conn, self._uow = conn, uow
        return uow

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: Any) -> None:
        uow, conn = self._uow, self._conn
        try:
            if exc_type is not None:
                uow._finish(commit=False)
                return
            try:
                uow._finish(commit=True)
            except BaseException:
                uow._finish(commit=False)
                raise
        finally:
            self._release(conn)

    def _release(self, conn: Connection) -> None:
        """The connection closed (back to the pool), or given back to the spares."""
        kept = self._kept
        if kept is None:
            conn.close()
        else:
            cast("SpareUnitConnections", self._spares).give_back(kept, self._idle)


@contextmanager
def read_connection(crm: CRM) -> Iterator[Connection]:
    """A read-only transaction on a bare connection, for hot reads that fire no hook
    (no Session, so no unit of work to build and tear down)."""
    with read_engine(crm).connect() as conn, conn.begin():
        yield conn


# Kept importable from here: plugins written before ``rawsql`` existed import them
# from ``recrm_core.db``.
from .rawsql import RawSelect as RawSelect  # noqa: E402
from .rawsql import RawWrite as RawWrite  # noqa: E402
