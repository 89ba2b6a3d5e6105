"""Insert-or-ignore and upsert (``INSERT ... ON CONFLICT``) on SQLite and PostgreSQL.

The database decides uniqueness, so two writers racing on one key both finish: one
inserts, the other ignores the row or updates it, and neither transaction fails.
Plugins use these instead of switching on the dialect themselves::

    from recrm_core import insert_or_ignore, upsert

    new_id = insert_or_ignore(uow.session, Award, {"event": "signed:42", "points": 500},
                              on=[Award.event], returning=Award.id)   # None: awarded before
    visits = upsert(uow.session, Visits, {"customer_id": 42, "count": 1},
                    on=[Visits.customer_id], set_={"count": Visits.count + 1},
                    returning=Visits.count)

The ``_many`` forms write a list of rows with one statement run once (executemany),
each row as the one-row form would, and return a result per row, in row order::

    counts = upsert_many(uow.session, Visits, [{"customer_id": 42, "count": 2}, ...],
                         on=[Visits.customer_id],
                         set_=lambda new: {"count": Visits.count + new.count},
                         returning=Visits.count)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Insert, Table, literal
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ClauseElement

from .db import Base
from .errors import ConfigError
from .rawsql import RawWrite

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

Returned = ColumnElement[Any] | InstrumentedAttribute[Any]
Column = str | Returned
#: what an upsert sets on the existing row: values or expressions, or a function of the
#: proposed row (its columns as attributes: ``new.count``) giving them
Setting = Mapping[str, Any] | Callable[[Any], Mapping[str, Any]]

def insert_or_ignore(
    session: Session,
    table: type[Base] | Table,
    values: Mapping[str, Any],
    *,
    on: Sequence[Column],
    returning: Returned | None = None,
) -> Any:
    """Insert one row unless a row with the same ``on`` columns exists.

    :param on: the columns of a primary key or unique constraint (the conflict target).
    :param returning: a column of the new row to return.
    :returns: that column's value, or ``None`` when the row existed; without
        ``returning``, whether a row was inserted.
    """
    if any(isinstance(v, ClauseElement) for v in values.values()):
        # A SQL expression among the values cannot travel as a parameter.
        ignoring = _insert(session, table).on_conflict_do_nothing(index_elements=list(on))
        return _execute(session, ignoring.values(dict(values)), returning)
    if session.autoflush:
        # Pending ORM changes first, as ``session.execute`` autoflushes before a Core
        # INSERT too (a hook's new row the insert refers to).
        session.flush()
    conn = session.connection()
    dialect = conn.dialect
    key = (dialect.name, table, tuple(on), returning, tuple(values))
    write = _IGNORING.get(key)
    if write is None:
        # Built once per table, conflict target and set of columns, then run with the
        # row as parameters: building it per row (``.values(row)`` coerces every
        # value into a bound parameter) cost more than the insert in hooks that run
        # once per stage change.
        # On the Core table with plain columns: an ORM-enabled INSERT runs through the
        # ORM's bulk-insert machinery, ~5x the cost of the Core statement (120 us a
        # row, measured), for nothing this function needs (no objects, no events).
        # Run on the driver's cursor (RawWrite): SQLAlchemy's execution path through
        # the Session cost several times the insert (the demo's ~1,700 awards,
        # commission entries and judging transitions; bench/README.md, demo10).
        stmt = _insert(session, _core_table(table)).on_conflict_do_nothing(
            index_elements=[_plain(c) for c in on])
        write = RawWrite(stmt.returning(
            _plain(returning) if returning is not None else literal(1)))
        if len(_IGNORING) < 1024:
            _IGNORING[key] = write
    found = write.first(conn, dict(values))
    return found if returning is not None else found is not None


#: insert_or_ignore's prebuilt INSERT ... ON CONFLICT DO NOTHING RETURNING statements
_IGNORING: dict[tuple[Any, ...], RawWrite] = {}


def _core_table(table: type[Base] | Table) -> Table:
    """The Core table of a mapped class (see insert_or_ignore: the ORM's INSERT path
    costs ~5x the Core one)."""
    core = table if isinstance(table, Table) else table.__table__
    assert isinstance(core, Table)
    return core


def _plain(column: Any) -> Any:
    """The table column behind an ORM attribute; anything else as it is."""
    if isinstance(column, InstrumentedAttribute):
        return column.property.columns[0]
    return column


def upsert(
    session: Session,
    table: type[Base] | Table,
    values: Mapping[str, Any],
    *,
    on: Sequence[Column],
    set_: Setting,
    returning: Returned | None = None,
) -> Any:
    """Insert one row, or update the row with the same ``on`` columns.

    :param on: the columns of a primary key or unique constraint (the conflict target).
    :param set_: what to update on the existing row: values, or expressions on its
        columns (``{"count": Visits.count + 1}``), evaluated under the row lock; or a
        function of the proposed row giving them (``lambda new: {...}``).
    :param returning: a column of the row written to return.
    :returns: that column's value; without ``returning``, ``True``.
    """
    stmt = _updating(session, table, on, set_)
    return _execute(session, stmt.values(dict(values)),
                    _plain(returning) if returning is not None else None)


def upsert_many(
    session: Session,
    table: type[Base] | Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    on: Sequence[Column],
    set_: Setting,
    returning: Returned | None = None,
) -> list[Any]:
    """``upsert`` for each of ``rows``, as one statement run once for them all.

    The rows hold plain values (no SQL expressions) and differ in their ``on``
    columns: PostgreSQL refuses to update one row twice in a statement. A ``set_``
    that depends on the row uses the function form: ``lambda new: {"count":
    Visits.count + new.count}``.

    :returns: ``upsert``'s result for each row, in the order of ``rows``.
    """
    core = _core_table(table)
    stmt = _returning(_updating(session, core, on, set_), core, on, returning)
    names = _names(on)
    wanted = [tuple(row[name] for name in names) for row in rows]
    if len(set(wanted)) < len(wanted):
        raise ValueError("upsert_many takes one row per conflict key")
    return _execute_many(session, stmt, rows, wanted, returning is not None)


def insert_or_ignore_many(
    session: Session,
    table: type[Base] | Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    on: Sequence[Column],
    returning: Returned | None = None,
) -> list[Any]:
    """``insert_or_ignore`` for each of ``rows``, in order, as one statement run once
    for them all (plain values, as in ``upsert_many``).

    A key that stands on more than one row is written once, as row-by-row calls
    would write it: its first row is inserted (or found stored) and gets the result,
    each later row is ignored (``None``, or ``False`` without ``returning``).
    A lone row (below :data:`FEW_ROWS`) is the one-row statement, which costs less.

    :returns: ``insert_or_ignore``'s result for each row, in the order of ``rows``.
    """
    if len(rows) < FEW_ROWS:
        return [insert_or_ignore(session, table, row, on=on, returning=returning)
                for row in rows]
    names = _names(on)
    wanted = [tuple(row[name] for name in names) for row in rows]
    first: dict[tuple[Any, ...], int] = {}
    for n, key in enumerate(wanted):
        first.setdefault(key, n)
    dialect = session.get_bind().dialect.name
    cache_key = (dialect, table, tuple(on), returning)
    stmt = _IGNORING_MANY.get(cache_key)
    if stmt is None:
        # Built once, as insert_or_ignore's: a single log's visit rule runs it.
        core = _core_table(table)
        stmt = _returning(_insert(session, core).on_conflict_do_nothing(
            index_elements=[_plain(c) for c in on]), core, on, returning)
        if len(_IGNORING_MANY) < 1024:
            _IGNORING_MANY[cache_key] = stmt
    found = _execute_many(session, stmt, [rows[n] for n in first.values()],
                          list(first), returning is not None)
    ignored = None if returning is not None else False
    written = dict(zip(first.values(), found, strict=True))
    return [written.get(n, ignored) for n in range(len(rows))]


#: below this many rows, insert_or_ignore_many runs the one-row statement per row:
#: CPU per row, one-row statements vs one statement for the batch (a 14-column
#: table, fresh keys): SQLite 40 vs 43 us at 2 rows, 41 vs 30 at 4, 34 vs 15 at 32;
#: PostgreSQL 130 vs 107 at 2, 121 vs 88 at 4. So only a lone row goes alone.
FEW_ROWS = 2


#: prebuilt statements of insert_or_ignore_many
_IGNORING_MANY: dict[tuple[Any, ...], Any] = {}


def _updating(session: Session, table: type[Base] | Table, on: Sequence[Column],
              set_: Setting) -> postgresql.Insert | sqlite.Insert:
    """INSERT ... ON CONFLICT DO UPDATE, without its values."""
    stmt = _insert(session, _core_table(table))
    return stmt.on_conflict_do_update(
        index_elements=[_plain(c) for c in on],
        set_=dict(set_(stmt.excluded) if callable(set_) else set_),
    )


def _insert(session: Session, table: type[Base] | Table) -> postgresql.Insert | sqlite.Insert:
    # The dialects' modules are imported here: importing this module is start-up.
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise ConfigError(f"insert_or_ignore/upsert support SQLite and PostgreSQL, not {dialect}")


def _execute(session: Session, stmt: Insert, returning: Returned | None) -> Any:
    if returning is not None:
        return session.execute(stmt.returning(returning)).scalar_one_or_none()
    # RETURNING rather than rowcount, which drivers report as -1 for such inserts.
    return session.execute(stmt.returning(literal(1))).scalar_one_or_none() is not None


def _returning(stmt: postgresql.Insert | sqlite.Insert, table: Table, on: Sequence[Column],
               returning: Returned | None) -> Insert:
    """``stmt`` returning the conflict key, then ``returning`` (or 1): rows come back in
    no promised order (an ignored one not at all), so each is matched to its row by
    the key."""
    keys = [table.c[name] for name in _names(on)]
    return stmt.returning(*keys, _plain(returning) if returning is not None else literal(1))


def _execute_many(session: Session, stmt: Insert, rows: Sequence[Mapping[str, Any]],
                  wanted: Sequence[tuple[Any, ...]], returning: bool) -> list[Any]:
    """Run ``stmt`` for ``rows`` (their conflict keys ``wanted``, each once); per row
    what ``stmt`` returned for its key (``None`` or ``False`` for an ignored row)."""
    if not rows:
        return []
    found = {tuple(got[:-1]): got[-1]
             for got in session.execute(stmt, [dict(row) for row in rows])}
    if not returning:
        return [key in found for key in wanted]
    return [found.get(key) for key in wanted]


def _names(on: Sequence[Column]) -> list[str]:
    return [c if isinstance(c, str) else _plain(c).key for c in on]
