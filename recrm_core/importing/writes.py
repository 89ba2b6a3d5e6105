"""A batch's bulk writes: raw INSERTs compiled once per dialect, COPY on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from itertools import chain, repeat
from operator import attrgetter, itemgetter
from typing import Any, cast

from sqlalchemy import Connection, Select, Table, bindparam, func, insert, select, update
from sqlalchemy.engine import Dialect

from .. import bulkcopy
from ..rawsql import RawSelect, RawWrite
from ..resolution import STATE_FIELDS
from ..tables import CustomerProjectRow, CustomerRow, IdentityRow
from .reads import _Link

_CUSTOMERS = cast(Table, CustomerRow.__table__)
_IDENTITIES = cast(Table, IdentityRow.__table__)
_LINKS = cast(Table, CustomerProjectRow.__table__)
_STATE_FIELDS = STATE_FIELDS
_CC = _CUSTOMERS.c
_LC = _LINKS.c
_FILL_LINK = RawWrite(update(_LINKS).where(_LC.id == bindparam("b_id")).values(
    owner_staff=func.coalesce(_LC.owner_staff, bindparam("b_owner", type_=_LC.owner_staff.type)),
    source=func.coalesce(_LC.source, bindparam("b_source", type_=_LC.source.type)),
))
# SQLite's next customer ids, on the driver's cursor (see _insert_customers)
_LAST_ID = RawSelect(select(func.max(_CC.id)))
_IDS_AFTER = RawSelect(cast("Select[Any]", select(func.max(_CC.id), func.count()).where(
    _CC.id > bindparam("before"))))
_link_owner = attrgetter("owner_staff")
_link_source = attrgetter("source")


def _write(
    conn: Connection,
    now: Any,
    new_refs: list[int],
    created: list[tuple[Any, ...]],
    state: dict[int, dict[str, Any]],
    identity_owners: list[int],
    identity_groups: list[tuple[tuple[str, str, str], ...]],
    new_links: dict[tuple[int, int], _Link],
    filled_links: dict[int, _Link],
    touched: dict[int, set[str]],
) -> dict[int, int]:
    """Write the batch; the id each new customer's reference stands for, in order.
    ``identity_owners[i]`` holds the identities of ``identity_groups[i]`` (each a kind,
    value and display); ``touched`` names the matched customers to update, each with
    the fields the batch filled (any other name in it is ignored)."""
    created_ids = _insert_customers(conn, now, created)
    real: dict[int, int] = dict(zip(new_refs, created_ids, strict=True))
    identities = list(chain.from_iterable(identity_groups))
    if identities:
        # the columns of the rows, by C iterators: each group's customer, made real,
        # repeated for its identities
        owners = chain.from_iterable(map(
            repeat, map(real.get, identity_owners, identity_owners), map(len, identity_groups)))
        kinds, values, displays = zip(*identities, strict=True)
        _insert_in_key_order(
            conn, _IDENTITIES, ("customer_id", "kind", "value", "display"),
            {"created_at": now}, [list(owners), kinds, values, displays],
            key=lambda row: (row[1], row[2]),
        )
    if touched:
        _fill_customers(conn, now, state, touched)
    if new_links:
        refs, pids = zip(*new_links, strict=True)
        pending = new_links.values()
        _insert_in_key_order(
            conn, _LINKS, ("customer_id", "project_id", "owner_staff", "source"),
            {"stage": "prospect", "first_seen_at": now, "stage_changed_at": now},
            [list(map(real.get, refs, refs)), pids, list(map(_link_owner, pending)),
             list(map(_link_source, pending))],
            key=lambda row: (row[0], row[1]),
        )
    if filled_links:
        _FILL_LINK.run_many(conn, [
            {"b_id": lid, "b_owner": held.owner_staff, "b_source": held.source}
            for lid, held in sorted(filled_links.items())
        ])
    return real


def _fill_customers(conn: Connection, now: Any, state: dict[int, dict[str, Any]],
                    touched: dict[int, set[str]]) -> None:
    """Fill the fields each matched customer of ``touched`` had empty (its ``state``,
    as the batch left it), and set its ``updated_at``, in id order.

    On SQLite only the fields filled are assigned, one UPDATE per set of them:
    assigning a column makes SQLite rewrite the entry of every index on it (``email``,
    the UNIQUE ``(source_system, external_id)``) whether or not its value changes, a
    random page of each index per customer that the commit writes again. PostgreSQL
    compares the values (an unchanged index is left alone) and locks each row it
    updates: there one statement assigns every field, so that concurrent importers
    lock the customers in one order (id), as their inserts lock keys
    (:func:`_insert_in_key_order`). Either way the statement runs on the driver's
    executemany: SQLAlchemy's cost ~30 µs a merged row at 200k rows
    (bench/README.md, "Session 7, impm7")."""
    every = conn.dialect.name != "sqlite"
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for cid in sorted(touched):
        changed = touched[cid]
        names = _STATE_FIELDS if every else tuple(
            name for name in _STATE_FIELDS if name in changed)
        held = state[cid]
        params = {"b_id": cid, "b_updated_at": now}
        for name in names:
            params[f"b_{name}"] = held[name]
        groups.setdefault(names, []).append(params)
    for names, rows in groups.items():
        _fill_statement(names).run_many(conn, rows)


@functools.lru_cache(maxsize=256)
def _fill_statement(names: tuple[str, ...]) -> RawWrite:
    """The UPDATE filling ``names`` (and setting ``updated_at``) of one customer.
    COALESCE keeps whatever a concurrent writer filled in meanwhile: an import only
    ever fills empty fields."""
    return RawWrite(update(_CUSTOMERS).where(_CC.id == bindparam("b_id")).values(
        {name: func.coalesce(_CC[name], bindparam(f"b_{name}", type_=_CC[name].type))
         for name in names}
        | {"updated_at": bindparam("b_updated_at", type_=_CC.updated_at.type)}
    ))



class _RawInsert:
    """An INSERT compiled once per dialect and run with the driver's ``executemany``.

    SQLAlchemy's own executemany costs several microseconds a row in parameter
    handling; here the few columns that need conversion (dates on SQLite) go through
    the column type's own bind processor and constants are converted once per batch.
    Compiling the statement and looking up its processors every batch cost ~2 % of
    the importing process: that is done once (:meth:`of`).
    """

    def __init__(
        self, dialect: Dialect, table: Table, columns: tuple[str, ...], constants: tuple[str, ...]
    ) -> None:
        names = [*columns, *constants]
        if dialect.name == "sqlite":
            _bind_nulls_directly()
        compiled = insert(table).compile(dialect=dialect, column_keys=names)
        self.sql = compiled.string
        processors = {
            name: table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in names
        }
        self.names = names
        self.constant_processors = [processors[name] for name in constants]
        self.convert: list[tuple[int, Callable[[Iterable[Any]], Iterable[Any]]]] = [
            (i, _column_processor(process))
            for i, n in enumerate(columns) if (process := processors[n]) is not None
        ]
        positions = list(compiled.positiontup or []) if compiled.positional else []
        order = [names.index(name) for name in positions] if positions else None
        # the statement's parameter order from a row's: one C call a row
        self.order: Callable[[tuple[Any, ...]], tuple[Any, ...]] | None = (
            None if order is None or order == list(range(len(names))) else itemgetter(*order))
        self.positional = bool(compiled.positional)

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def of(
        dialect: Dialect, table: Table, columns: tuple[str, ...], constants: tuple[str, ...]
    ) -> _RawInsert:
        return _RawInsert(dialect, table, columns, constants)

    def params(self, columns: Sequence[Iterable[Any]], constants: tuple[Any, ...]) -> list[Any]:
        """The driver's parameters for rows given as ``columns`` (equally long), built
        by C iterators (``zip``, ``map``): a Python loop over the rows, copying a tuple
        per row, cost ~0.5 us a row, a few per cent of the importing process over its
        three tables."""
        constants = tuple(_processed(process, value)
                          for process, value in zip(self.constant_processors, constants,
                                                    strict=True))
        converted = list(columns)
        for i, process in self.convert:
            converted[i] = process(converted[i])
        # the constants' columns repeat; zip stops at the end of the rows
        full: Iterator[tuple[Any, ...]] = zip(*converted, *map(repeat, constants),
                                              strict=False)
        if not self.positional:
            names = self.names
            return [dict(zip(names, row, strict=True)) for row in full]
        if self.order is not None:
            full = map(self.order, full)
        return list(full)

    def execute(self, conn: Connection, columns: Sequence[Iterable[Any]],
                constants: dict[str, Any]) -> None:
        params = self.params(columns, tuple(constants.values()))
        if params:
            conn.exec_driver_sql(self.sql, params)


def _bind_nulls_directly() -> None:
    """Let Python's ``sqlite3`` bind a None as NULL without first failing to adapt it.

    The driver binds an exact ``int``/``float``/``str`` as it is and passes anything
    else, None included, to its adapters: with none registered for None, it looks up
    ``__adapt__`` on its protocol type, which raises an AttributeError (its message
    formatted) that it then clears — ~9,000 instructions a row of a batch's inserts
    (half of a customer's fields are empty), ~7 % of the importing process's work
    at 200k rows. An adapter registered for None's type is found in the registry's
    dict instead; ``{}.get`` is a C callable that answers None for any value, which
    the driver binds as NULL, as before. It is the driver's registry, for the whole
    process: any SQLite statement binding a None gains alike."""
    import sqlite3

    sqlite3.register_adapter(type(None), cast("Callable[[None], None]", {}.get))


def _raw_insert(
    conn: Connection, table: Table, columns: tuple[str, ...], constants: dict[str, Any],
    data: Sequence[Iterable[Any]],
) -> None:
    """Insert rows given as ``data``, one sequence per name of ``columns``."""
    _RawInsert.of(conn.dialect, table, columns, tuple(constants)).execute(conn, data, constants)


def _insert_in_key_order(
    conn: Connection,
    table: Table,
    columns: tuple[str, ...],
    constants: dict[str, Any],
    data: Sequence[Sequence[Any]],
    key: Callable[[tuple[Any, ...]], Any],
) -> None:
    """Insert rows (in file order), given as ``data``, one sequence per name of
    ``columns``, into a table with a UNIQUE key.

    On PostgreSQL each inserted key is locked in its unique index until commit, so
    two batches inserting shared keys in different orders deadlock. Rows go in
    (by COPY) sorted by ``key`` — one lock order for every importer — yet keep ids in
    file order (a customer's first mobile stays first), because the ids are drawn
    from the table's sequence beforehand and given out in file order. SQLite runs one
    writer at a time and needs neither.
    """
    if conn.dialect.name == "sqlite":
        _raw_insert(conn, table, columns, constants, data)
        return
    bulkcopy.copy_numbered(conn, table, columns, constants, list(zip(*data, strict=True)),
                           key=key)


#: dates no bind processor would write otherwise (:func:`_column_processor`)
_DATE_PROBES = (dt.date(1, 1, 1), dt.date(999, 12, 31), dt.date(2024, 2, 29),
                dt.datetime(1990, 5, 6, 7, 8, 9))


def _column_processor(
    process: Callable[[Any], Any]
) -> Callable[[Iterable[Any]], Iterable[Any]]:
    """A bind processor applied to a whole column of a batch's rows.

    SQLite's DATE processor (``%(year)04d-%(month)02d-%(day)02d`` filled from a
    dict) costs ~1.4 us a value, ~0.2 s of CPU per 200,000 birth dates; a processor
    that writes exactly what ``date.isoformat`` writes (checked here on dates of
    every width, and a datetime, whose date part DATE keeps) is replaced by that C
    method, None kept: ~0.3 us a value. Any other processor is used as it is.
    """
    iso = dt.date.isoformat  # of date's own: a datetime gives its date part
    try:
        same = all(process(d) == iso(d) for d in _DATE_PROBES) and process(None) is None
    except Exception:  # a processor of something else: it refuses dates
        same = False
    if same:
        return lambda values: [None if v is None else iso(v) for v in values]
    return partial(map, process)


def _processed(process: Callable[[Any], Any] | None, value: Any) -> Any:
    return value if process is None else process(value)


def _insert_customers(conn: Connection, now: Any, rows: list[tuple[Any, ...]]) -> list[int]:
    """Insert customers (``_STATE_FIELDS`` values); their new ids, in order."""
    if not rows:
        return []
    if conn.dialect.name != "sqlite":
        return bulkcopy.copy_numbered(
            conn, _CUSTOMERS, _STATE_FIELDS,
            {"stage": "prospect", "created_at": now, "updated_at": now},
            rows,
        )
    # SQLite gives a new row max(rowid) + 1, and our open write transaction keeps
    # everyone else out, so the batch gets the next len(rows) ids; checked, not assumed.
    before = _LAST_ID.all(conn, {})[0][0] or 0  # None: an empty table
    _raw_insert(conn, _CUSTOMERS, _STATE_FIELDS,
                {"stage": "prospect", "created_at": now, "updated_at": now},
                list(zip(*rows, strict=True)))
    ((last, count),) = _IDS_AFTER.all(conn, {"before": before})
    if count != len(rows) or last != before + len(rows):
        raise RuntimeError("customer ids of an import batch are not consecutive")
    return list(range(before + 1, last + 1))
