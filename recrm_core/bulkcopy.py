"""PostgreSQL's bulk paths: key lookups bound to one array parameter, writes by COPY.

The one place recrm leaves SQLAlchemy's usual statements for PostgreSQL's own bulk
interfaces, because the usual ones cost the import a factor of 3 to 5 on a large
table and slowed it as the table grew (figures in ``bench/README.md``, "PostgreSQL
import"):

- **Lookups** probe the index once per key of the batch (a LATERAL subquery over
  ``unnest`` of the keys, passed as one array parameter per column): a nested loop
  of index probes whatever the table's statistics (see the comment above
  ``_IDENTITY_OWNERS``). ``kind = $1 AND value IN ($2, … $501)`` was planned
  without statistics (autovacuum lags a long import, and is off on the test
  server) as a scan of the index on ``kind`` alone, reading every mobile for each
  batch. One short statement text also lets psycopg and SQLAlchemy cache it, where
  500-parameter IN lists were re-rendered and re-parsed for every chunk.
- **Inserts** go through ``COPY … FROM STDIN`` (psycopg's ``cursor.copy``) with
  explicit ids drawn from the table's sequence beforehand, so the caller knows them
  without ``RETURNING`` and gives them out in file order, while the rows are written
  in the order of their unique key (one lock order for every concurrent importer,
  see :func:`copy_numbered`). COPY checks constraints as INSERT does: a key a
  concurrent importer took fails the batch with the same IntegrityError, and the
  caller retries it.

SQLite keeps SQLAlchemy's path; nothing here is called for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, text
from sqlalchemy.exc import DBAPIError

from .resolution import EXTERNAL, Key, external_key

# Each lookup is a LATERAL subquery per key of the batch: a lateral reference can
# only be run as a nested loop, one index probe per key, so no estimate of the
# table's size (without statistics, one from its pages) can turn it into a hash
# join over a scan of the whole table, as it did a plain join on ``unnest``
# (measured: 60,000 identities read for 100 keys). LIMIT 1 keeps the subquery from
# being pulled up into a plain join.

#: the owner of each (kind, value) key, on UNIQUE(kind, value)
_IDENTITY_OWNERS = text(
    "SELECT k.kind, k.value, o.customer_id"
    " FROM unnest(CAST(:kinds AS varchar[]), CAST(:values AS varchar[])) AS k(kind, value)"
    " CROSS JOIN LATERAL (SELECT i.customer_id FROM identities AS i"
    " WHERE i.kind = k.kind AND i.value = k.value LIMIT 1) AS o"
)
#: on UNIQUE(source_system, external_id); a merged-away customer's reference resolves
#: to its survivor (merges keep ``merged_into`` flat), as in
#: :func:`recrm_core.customers.owners_of_keys`
_EXTERNAL_OWNERS = text(
    "SELECT k.system, k.ext_id, o.owner"
    " FROM unnest(CAST(:systems AS varchar[]), CAST(:ids AS varchar[])) AS k(system, ext_id)"
    " CROSS JOIN LATERAL (SELECT COALESCE(c.merged_into, c.id) AS owner FROM customers AS c"
    " WHERE c.source_system = k.system AND c.external_id = k.ext_id LIMIT 1) AS o"
)
#: the batch's matched customers: their fillable state (on the primary key), ID-card
#: hash (on the identities' customer_id index) and links (on UNIQUE(customer_id,
#: project_id))
_STATE = (
    "SELECT c.id, {columns} FROM unnest(CAST(:ids AS integer[])) AS k(id)"
    " CROSS JOIN LATERAL (SELECT * FROM customers AS c WHERE c.id = k.id LIMIT 1) AS c"
)
_ID_CARDS = text(
    "SELECT k.id, o.value FROM unnest(CAST(:ids AS integer[])) AS k(id)"
    " CROSS JOIN LATERAL (SELECT i.value FROM identities AS i"
    " WHERE i.customer_id = k.id AND i.kind = :kind LIMIT 1) AS o"
)
_LINKS = text(
    "SELECT l.id, l.customer_id, l.project_id, l.owner_staff, l.source"
    " FROM unnest(CAST(:ids AS integer[])) AS k(id)"
    " CROSS JOIN LATERAL (SELECT * FROM customer_projects AS l WHERE l.customer_id = k.id"
    " AND l.project_id = ANY(CAST(:projects AS integer[])) OFFSET 0) AS l"
)
#: the sequence is looked up once (materialized), not per row: a third of the time;
#: the ids come back as one array, which the driver parses in C (a fifth of the
#: client's time for 2,000 rows through the result machinery)
_NEXT_IDS = text(
    "WITH s AS MATERIALIZED"
    " (SELECT CAST(pg_get_serial_sequence(:table, 'id') AS regclass) AS seq)"
    " SELECT array_agg(nextval(s.seq)) FROM s, generate_series(1, :n)"
)


def owners_of_keys(conn: Connection, keys: Iterable[Key]) -> dict[Key, int]:
    """Which customer holds each key: one indexed join per kind of table, however
    many keys."""
    kinds: list[str] = []
    values: list[str] = []
    systems: list[str] = []
    ext_ids: list[str] = []
    for kind, value in sorted(set(keys)):
        if kind == EXTERNAL:
            system, ext_id = value.split("\x1f", 1)
            systems.append(system)
            ext_ids.append(ext_id)
        else:
            kinds.append(kind)
            values.append(value)
    found: dict[Key, int] = {}
    if kinds:
        for kind, value, cid in conn.execute(_IDENTITY_OWNERS,
                                             {"kinds": kinds, "values": values}):
            found[(kind, value)] = cid
    if systems:
        for system, ext_id, cid in conn.execute(_EXTERNAL_OWNERS,
                                                {"systems": systems, "ids": ext_ids}):
            found[(EXTERNAL, external_key(system, ext_id))] = cid
    return found


def customer_state(
    conn: Connection, ids: list[int], columns: Sequence[str]
) -> dict[int, dict[str, Any]]:
    """``columns`` of each customer of ``ids``."""
    sql = text(_STATE.format(columns=", ".join(f'c."{name}"' for name in columns)))
    return {cid: dict(zip(columns, values, strict=True))
            for cid, *values in conn.execute(sql, {"ids": ids})}


def id_cards(conn: Connection, ids: list[int], kind: str) -> dict[int, str]:
    """The ID-card key (``kind``) of each customer of ``ids`` that has one."""
    return {cid: value for cid, value in conn.execute(_ID_CARDS, {"ids": ids, "kind": kind})}


def links(
    conn: Connection, ids: list[int], projects: list[int]
) -> list[tuple[int, int, int, str | None, str | None]]:
    """(id, customer, project, owner, source) of each link of ``ids`` to ``projects``."""
    return [(lid, cid, pid, owner, source) for lid, cid, pid, owner, source
            in conn.execute(_LINKS, {"ids": ids, "projects": projects})]


def next_ids(conn: Connection, table: Table, count: int) -> list[int]:
    """``count`` new ids of ``table`` from its sequence, ascending: given out in the
    rows' order they keep the order the rows came in."""
    if count <= 0:
        return []
    return sorted(conn.execute(_NEXT_IDS, {"table": table.name, "n": count}).scalar_one())


def copy_numbered(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    constants: dict[str, Any],
    rows: Sequence[tuple[Any, ...]],
    key: Callable[[tuple[Any, ...]], Any] | None = None,
) -> list[int]:
    """Insert ``rows`` (values of ``columns``, plus the same ``constants`` each) with
    new ids given out in the rows' order; the ids, in that order.

    With ``key`` the rows are written sorted by it. On PostgreSQL each inserted key
    is locked in its unique index until commit, so two importers writing shared keys
    in different orders would deadlock; one order for everyone makes one of them
    wait instead.
    """
    ids = next_ids(conn, table, len(rows))
    if not ids:
        return ids
    tail = _as_text(conn, constants.values())
    numbered: Iterable[tuple[Any, ...]] = [
        (rid, *row, *tail) for rid, row in zip(ids, rows, strict=True)
    ]
    if key is not None:
        numbered = sorted(numbered, key=lambda r: key(r[1 : 1 + len(columns)]))
    copy_rows(conn, table, ("id", *columns, *constants), numbered)
    return ids


def _as_text(conn: Connection, values: Iterable[Any]) -> tuple[Any, ...]:
    """``values`` in the text COPY sends for them, dumped once by the driver's own
    dumpers instead of again for every row (COPY's text format carries no types: the
    server parses the same text either way). The constants are mostly timestamps,
    whose dumping was ~80 % of ``write_row``'s time (client CPU for 190,000 rows with
    two: 0.55 s, 0.11 s with them dumped once)."""
    from psycopg.adapt import PyFormat

    driver = _driver(conn)
    out: list[Any] = []
    for value in values:
        if value is None or isinstance(value, str):
            out.append(value)
            continue
        dumped = driver.adapters.get_dumper(type(value), PyFormat.TEXT)(
            type(value), driver).dump(value)
        out.append(None if dumped is None else bytes(dumped).decode())
    return tuple(out)


def _driver(conn: Connection) -> Any:
    import psycopg  # only ever called on PostgreSQL, whose driver this is

    driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    return driver


def copy_rows(
    conn: Connection, table: Table, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]
) -> None:
    """``COPY table (columns) FROM STDIN`` of ``rows``, in the connection's open
    transaction. A database error is raised as SQLAlchemy raises it for a statement
    (IntegrityError for a taken key, with the driver's error and SQLSTATE as
    ``orig``), so the callers' retry on a lost race sees the same exception."""
    import psycopg  # only ever called on PostgreSQL, whose driver this is

    names = ", ".join(f'"{name}"' for name in columns)
    sql = f'COPY "{table.name}" ({names}) FROM STDIN'
    driver = _driver(conn)
    try:
        with driver.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
    except psycopg.Error as exc:
        raise DBAPIError.instance(sql, None, exc, psycopg.Error,
                                  dialect=conn.dialect) from exc
