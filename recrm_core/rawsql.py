"""Statements compiled by SQLAlchemy once and run on the driver's own cursor.

The one place where the core steps off SQLAlchemy's execution path, for the hot
single-row reads and writes whose per-statement machinery cost more than the
database's own work (bench/README.md, sessions 3-8): :class:`RawSelect` and
:class:`RawWrite`. Statements are still built and compiled by SQLAlchemy and every
value goes through its type's own bind and result processing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Engine, Insert, Select, Update
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, InvalidRequestError
from sqlalchemy.sql.compiler import SQLCompiler

from .spareconns import spares_of


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
            order = list(compiled.positiontup or []) if compiled.positional else None
            plan = self._plans[key] = _Plan(
                compiled.string,
                _arguments(order),
                _result_processors(dialect, self.statement.selected_columns),
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
        return _processed(rows, plan.processors) if plan.processors and rows else rows


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    #: the driver's arguments for the parameters (``_arguments``)
    arguments: Callable[[dict[str, Any]], Any]
    #: (column index, its type's result processor, whether that gives None for None:
    #: a NULL then needs no call, most of a customer's dates being NULL)
    processors: list[tuple[int, Any, bool]]


def _result_processors(dialect: Dialect, columns: Any) -> list[tuple[int, Any, bool]]:
    """(index, result processor, whether it gives None for None) of each of
    ``columns`` whose type processes its values."""
    processors = [column.type.dialect_impl(dialect).result_processor(dialect, None)
                  for column in columns]
    return [(i, p, _keeps_none(p)) for i, p in enumerate(processors) if p is not None]


def _processed(rows: list[tuple[Any, ...]],
               processors: list[tuple[int, Any, bool]]) -> list[tuple[Any, ...]]:
    """``rows`` with their values through the columns' result processors."""
    out = []
    for row in rows:
        values = list(row)
        for i, process, keeps_none in processors:
            value = values[i]
            if value is not None or not keeps_none:
                values[i] = process(value)
        out.append(tuple(values))
    return out


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
                              _slots(compiled, keys, binds, processors), binds,
                              _result_processors(dialect, self.statement.exported_columns))
        self._plans[key] = plan
        return plan

    def run(self, conn: Connection, params: dict[str, Any]) -> Any:
        """Write; the first column of the first row returned, if the statement
        returns any (the new row's id), else None."""
        rows = self._write(conn, params)
        return rows[0][0] if self.returns else None

    def first(self, conn: Connection, params: dict[str, Any]) -> Any:
        """Write; the first column of the first row returned, or None when no row
        came back (an ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` that ignored
        its row: ``insert_or_ignore``)."""
        rows = self._write(conn, params)
        return rows[0][0] if rows else None

    def _write(self, conn: Connection, params: dict[str, Any]) -> list[Any]:
        """Write; the rows returned (none without RETURNING)."""
        returns = self.returns
        dialect = conn.dialect
        plan = self._plan(dialect, frozenset(params))
        if plan is None:
            result = conn.execute(self.statement, params)
            return list(result) if returns else []
        args = plan.args(params)
        dbapi_error = dialect.loaded_dbapi.Error
        try:
            rows = _on_cursor(conn.connection.dbapi_connection, plan.sql, args, returns)
        except dbapi_error as exc:
            raise DBAPIError.instance(plan.sql, args, exc, dbapi_error) from exc
        # Through the returned columns' types, as SQLAlchemy's path gives them.
        return _processed(rows, plan.returned) if plan.returned and rows else rows

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
    #: the RETURNING columns' result processors (``_result_processors``)
    returned: list[tuple[int, Any, bool]]

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
