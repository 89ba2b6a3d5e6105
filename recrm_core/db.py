"""The shared SQLAlchemy ``Base``, the engine factory and the unit of work.

Every table, the core's and each plugin's, is declared once on :class:`Base`, whose
naming convention gives constraints stable names (Alembic relies on them later).
"""

from __future__ import annotations

import datetime as dt
import logging
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import InitVar, dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    Insert,
    MetaData,
    Select,
    Update,
    create_engine,
    event,
)
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InvalidRequestError, NoSuchModuleError
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.pool import QueuePool, StaticPool
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeDecorator

from .errors import ConfigError
from .spareconns import keep_spares, spares_of

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
    #: the pool connection the transaction runs on (``connection`` below)
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
    return _UnitOfWorkBlock(read_engine(crm) if readonly else crm.engine, crm, actor)


class _UnitOfWorkBlock:
    """``with unit_of_work(...) as uow``: a pool connection and the unit of work on it;
    commits when the block ends, rolls back if it raises (or if the commit does),
    then returns the connection to the pool.

    A class rather than a ``@contextmanager`` generator: every operation makes one,
    and the generator and its wrapper cost ~1 µs more a unit of work."""

    __slots__ = ("_actor", "_bind", "_conn", "_crm", "_uow")

    def __init__(self, bind: Engine, crm: CRM, actor: Actor | None) -> None:
        self._bind, self._crm, self._actor = bind, crm, actor

    def __enter__(self) -> UnitOfWork:
        conn = self._bind.connect()
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
                conn.close()
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
            conn.close()


@contextmanager
def read_connection(crm: CRM) -> Iterator[Connection]:
    """A read-only transaction on a bare connection, for hot reads that fire no hook
    (no Session, so no unit of work to build and tear down)."""
    with read_engine(crm).connect() as conn, conn.begin():
        yield conn


class RawSelect:
    """A SELECT compiled once per dialect and run on the driver's own cursor.

    For hot single-row reads: SQLAlchemy's execution path costs about 20 µs a
    statement, ten times what SQLite needs for an indexed lookup. The statement is
    still built and compiled by SQLAlchemy (never string-built) and every column's
    result processing (dates on SQLite, aware UTC datetimes) is the type's own; what
    is skipped is the per-execution machinery, including ``*_cursor_execute``
    events. :meth:`all` runs inside a connection's current transaction, :meth:`pooled`
    on a connection of its own (on a SQLite file one kept aside from the pool).
    """

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._plans: dict[tuple[type[Dialect], str], _Plan] = {}
        #: the dialect last run on and its plan: the next call's, nearly always
        self._last: tuple[Dialect, _Plan] | None = None

    def _plan(self, dialect: Dialect) -> _Plan:
        last = self._last
        if last is not None and last[0] is dialect:
            return last[1]
        key = (type(dialect), dialect.paramstyle)
        plan = self._plans.get(key)
        if plan is None:
            compiled = self.statement.compile(dialect=dialect)
            processors = [
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in self.statement.selected_columns
            ]
            order = list(compiled.positiontup or []) if compiled.positional else None
            plan = self._plans[key] = _Plan(
                compiled.string,
                _arguments(order),
                [(i, p, _keeps_none(p)) for i, p in enumerate(processors) if p is not None],
            )
        self._last = (dialect, plan)
        return plan

    def all(self, conn: Connection, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The rows, inside ``conn``'s current transaction."""
        return self._run(conn.dialect, conn.connection.dbapi_connection, params)

    def pooled(self, engine: Engine, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The rows, on a driver connection checked out of ``engine``'s pool for this
        one statement, outside any transaction (atomic on its own).

        For a hot read that needs no transaction: checking out a pool connection
        costs about 5 µs, wrapping it in a ``Connection`` and closing that as much
        again. On a SQLite file the connection is one kept aside from the pool
        (``recrm_core.spareconns``: no pool checkout either) while one is free.
        Driver errors come wrapped as SQLAlchemy's (``OperationalError`` for an
        unreachable database), as through a ``Connection``.
        """
        dbapi_error = engine.dialect.loaded_dbapi.Error
        spares = spares_of(engine)
        try:
            if spares is not None and (taken := spares.take(engine)) is not None:
                dbapi_connection, idle = taken
                try:
                    rows = self._run(engine.dialect, dbapi_connection, params)
                except BaseException:
                    spares.discard(dbapi_connection)  # as the pool invalidates it
                    raise
                spares.give_back(dbapi_connection, idle)
                return rows
            pooled = engine.raw_connection()
            try:
                return self._run(engine.dialect, pooled.dbapi_connection, params)
            finally:
                pooled.close()
        except dbapi_error as exc:
            raise DBAPIError.instance(self._plan(engine.dialect).sql, params, exc,
                                      dbapi_error) from exc

    def _run(self, dialect: Dialect, dbapi_connection: Any,
             params: dict[str, Any]) -> list[tuple[Any, ...]]:
        plan = self._plan(dialect)
        rows = _on_cursor(dbapi_connection, plan.sql, plan.arguments(params), True)
        if plan.processors and rows:
            out = []
            for row in rows:
                values = list(row)
                for i, process, keeps_none in plan.processors:
                    value = values[i]
                    if value is not None or not keeps_none:
                        values[i] = process(value)
                out.append(tuple(values))
            return out
        return rows


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    #: the driver's arguments for the parameters (``_arguments``)
    arguments: Callable[[dict[str, Any]], Any]
    #: (column index, its type's result processor, whether that gives None for None:
    #: a NULL then needs no call, most of a customer's dates being NULL)
    processors: list[tuple[int, Any, bool]]


def _arguments(order: list[str] | None) -> Callable[[dict[str, Any]], Any]:
    """What makes the driver's arguments of a statement from its parameters: the
    dict itself for a named paramstyle, else a tuple of them in placeholder order
    (``order``)."""
    if order is None:
        return lambda params: params
    if len(order) == 1:
        name = order[0]
        return lambda params: (params[name],)
    if not order:
        return lambda params: ()
    return itemgetter(*order)


def _keeps_none(process: Any) -> bool:
    """Whether a result processor gives None for None (processors are pure)."""
    try:
        return process(None) is None
    except Exception:
        return False


def _on_cursor(dbapi_connection: Any, sql: str, args: Any,
               fetch: bool) -> list[tuple[Any, ...]]:
    """Run one statement on a driver cursor of its own; its rows if ``fetch``."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(sql, args)
        # a list from both drivers (sqlite3's and psycopg's fetchall)
        rows: list[tuple[Any, ...]] = cursor.fetchall() if fetch else []
        return rows
    finally:
        cursor.close()


class RawWrite:
    """An INSERT or UPDATE compiled once per dialect and set of parameter names, run
    on the driver's cursor inside a connection's current transaction.

    For the single-row writes of the per-operation paths (``customers.add``,
    ``interactions.log``, ``set_stage``, ``cases.open``): SQLAlchemy's execution path
    cost 30-60 µs a statement there, more than SQLite takes to write the row. As with
    :class:`RawSelect`, SQLAlchemy builds and compiles the statement and every value
    goes through its type's own bind processing (UTC datetimes, JSON); skipped are the
    execution context and the ``*_cursor_execute`` events. A statement whose
    compiled form needs defaults computed at execution (a column with a Python
    default left out of the parameters) runs through SQLAlchemy instead. Driver
    errors come wrapped as SQLAlchemy's (``IntegrityError`` for a UNIQUE race).

    The driver's arguments are laid out once per plan (see ``_slots``): which
    parameter each placeholder takes and its bind processor, and the statement's own
    constants (``set_stage``'s CASE over the stages: 26 of its 28 placeholders)
    processed once, instead of ``construct_params`` and a processor pass a call
    (6-12 µs of a ``set_stage``, bench/README.md "Session 6, ops6").
    """

    def __init__(self, statement: Insert | Update) -> None:
        self.statement = statement
        self.returns = bool(statement.exported_columns)  # a RETURNING clause
        self._plans: dict[tuple[type[Dialect], str, frozenset[str]], _WritePlan | None] = {}

    def _plan(self, dialect: Dialect, keys: frozenset[str]) -> _WritePlan | None:
        key = (type(dialect), dialect.paramstyle, keys)
        if key in self._plans:
            return self._plans[key]
        compiled = self.statement.compile(dialect=dialect, column_keys=list(keys))
        plan = None
        # (Postfetch columns, computed by the database, need nothing from us.)
        if not (compiled.insert_prefetch or compiled.update_prefetch):
            processors = {}
            for bind, name in compiled.bind_names.items():
                process = bind.type.dialect_impl(dialect).bind_processor(dialect)
                if process is not None:
                    processors[compiled.escaped_bind_names.get(name, name)] = process
            order = list(compiled.positiontup or []) if compiled.positional else None
            binds = order if order is not None else list(compiled.bind_names.values())
            plan = _WritePlan(compiled, compiled.string, order, processors,
                              _slots(compiled, keys, binds, processors), binds)
        self._plans[key] = plan
        return plan

    def run(self, conn: Connection, params: dict[str, Any]) -> Any:
        """Write; the first column of the first row returned, if the statement
        returns any (the new row's id), else None."""
        returns = self.returns
        dialect = conn.dialect
        plan = self._plan(dialect, frozenset(params))
        if plan is None:
            result = conn.execute(self.statement, params)
            return result.scalar_one() if returns else None
        args = plan.args(params)
        dbapi_error = dialect.loaded_dbapi.Error
        try:
            rows = _on_cursor(conn.connection.dbapi_connection, plan.sql, args, returns)
        except dbapi_error as exc:
            raise DBAPIError.instance(plan.sql, args, exc, dbapi_error) from exc
        return rows[0][0] if returns else None

    def run_many(self, conn: Connection, params: list[dict[str, Any]]) -> None:
        """Write one row per item of ``params`` (each with the same names) with one
        ``executemany``, through ``conn.exec_driver_sql``: for a batch's statements,
        whose per-statement cost is spread over many rows, its events and error
        wrapping are kept; what is saved is ``construct_params`` and the bind
        processing per row (~30 µs a row for an import batch's UPDATE of ten columns)."""
        if not params:
            return
        if self.returns:
            raise TypeError("run_many takes a statement without RETURNING")
        plan = self._plan(conn.dialect, frozenset(params[0]))
        if plan is None:
            conn.execute(self.statement, params)
            return
        conn.exec_driver_sql(plan.sql, list(map(plan.args, params)))


class _Probe:
    """A parameter value standing for its name, to see where ``construct_params`` puts
    each parameter."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


#: one driver argument: (the parameter it takes, its bind processor, None), or
#: (None, None, the statement's own constant, processed)
_Slot = tuple[str | None, Any, Any]


def _slots(compiled: SQLCompiler, keys: frozenset[str], names: list[str],
           processors: dict[str, Any]) -> list[_Slot] | None:
    """Each driver argument of ``compiled`` (for the bind ``names``, in placeholder
    order for a positional paramstyle) as ``construct_params`` and the bind processors
    make it: the parameter it copies, or a constant of the statement. None (the call
    then runs ``construct_params`` itself) unless every bind is one of the two: an
    escaped name, an expanding bind or a value computed at each execution
    (``callable_``) keeps SQLAlchemy's path."""
    if compiled.escaped_bind_names:
        return None
    elements = {name: bind for bind, name in compiled.bind_names.items()}
    if any(bind.expanding or bind.callable is not None for bind in elements.values()):
        return None  # (checked first: probing would call the callable)
    try:
        probed = compiled.construct_params({k: _Probe(k) for k in keys})
    except InvalidRequestError:  # a missing parameter: the call raises it as before
        return None
    slots: list[_Slot] = []
    for name in names:
        if name not in elements:
            return None
        value, process = probed[name], processors.get(name)
        if isinstance(value, _Probe):
            slots.append((value.name, process, None))
        else:
            slots.append((None, None, value if process is None else process(value)))
    return slots


@dataclass(frozen=True, slots=True)
class _WritePlan:
    compiled: SQLCompiler
    sql: str
    #: parameter names in placeholder order, for positional paramstyles
    order: list[str] | None
    #: bind name -> its type's bind processor
    processors: dict[str, Any]
    #: the driver's arguments laid out (``_slots``), or None to construct them a call
    slots: list[_Slot] | None
    #: the bind names in ``slots``' order (``order``, or each once for a named
    #: paramstyle)
    binds: list[str]

    def args(self, params: dict[str, Any]) -> Any:
        """The driver's arguments for ``params``: a tuple in placeholder order, or a
        dict for a named paramstyle."""
        slots = self.slots
        if slots is None:
            values = self.compiled.construct_params(params)
            for name, process in self.processors.items():
                values[name] = process(values[name])
            return values if self.order is None else tuple(values[n] for n in self.order)
        if self.order is not None:
            return tuple([value if name is None else
                          params[name] if process is None else process(params[name])
                          for name, process, value in slots])
        return {bind: value if name is None else
                params[name] if process is None else process(params[name])
                for bind, (name, process, value) in zip(self.binds, slots, strict=True)}
