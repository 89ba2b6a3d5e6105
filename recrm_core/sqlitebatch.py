"""SQLite's batch lookups: a whole batch's keys bound as one JSON array parameter.

The SQLite twin of :mod:`recrm_core.bulkcopy`'s array-bound probes. An import batch
used to ask with ``IN (…500 parameters)`` lists, in slices: SQLAlchemy renders such
a list anew on every execution (about a quarter of a batch's lookup time went to
compiling and binding its parameters, ~25 µs a row under cProfile). Here each lookup
is one statement, compiled once, whose only list parameter is a JSON array read by
SQLite's ``json_each``; ``EXPLAIN QUERY PLAN`` shows each one as an index search per
value (``SEARCH identities USING INDEX sqlite_autoindex_identities_1 (kind=? AND
value=?)``, ``customers`` by rowid, ``customer_projects`` on its UNIQUE
``(customer_id, project_id)`` and ``identities`` on ``ix_identities_customer_id``),
whatever the statistics.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Select, Table, bindparam, func, select

from .rawsql import RawSelect
from .tables import CustomerProjectRow, CustomerRow, IdentityRow

_CUSTOMERS = cast(Table, CustomerRow.__table__)
_IDENTITIES = cast(Table, IdentityRow.__table__)
_LINKS = cast(Table, CustomerProjectRow.__table__)


def _each(name: str) -> Select[Any]:
    """The values of the JSON array bound as ``name``, as a subquery for ``IN``."""
    return select(func.json_each(bindparam(name)).table_valued("value").c.value)


def _array(values: Iterable[Any]) -> str:
    return json.dumps(list(values))


# Run on the driver's cursor (RawSelect): each runs once per import batch, and
# SQLAlchemy's execution path (cache key, result set-up) cost more than SQLite's
# work for the batch's few matched customers.
_OWNERS = RawSelect(select(_IDENTITIES.c.value, _IDENTITIES.c.customer_id).where(
    _IDENTITIES.c.kind == bindparam("kind"), _IDENTITIES.c.value.in_(_each("values"))))
_IDENTITIES_OF = RawSelect(select(
    _IDENTITIES.c.customer_id, _IDENTITIES.c.kind, _IDENTITIES.c.value).where(
    _IDENTITIES.c.customer_id.in_(_each("ids"))))
_LINKS_OF = RawSelect(select(_LINKS.c.id, _LINKS.c.customer_id, _LINKS.c.project_id,
                             _LINKS.c.owner_staff, _LINKS.c.source).where(
    _LINKS.c.customer_id.in_(_each("ids")), _LINKS.c.project_id.in_(_each("pids"))))
#: columns -> the statement reading them (customer_state)
_STATES: dict[tuple[str, ...], RawSelect] = {}


def identity_owners(conn: Connection, kind: str, values: Iterable[str]) -> dict[str, int]:
    """value -> customer id, for the identities of ``kind`` among ``values``."""
    return dict(_OWNERS.all(conn, {"kind": kind, "values": _array(values)}))


def customer_state(
    conn: Connection, ids: Sequence[int], columns: Sequence[str]
) -> dict[int, dict[str, Any]]:
    """``columns`` of each customer of ``ids``."""
    names = tuple(columns)
    query = _STATES.get(names)
    if query is None:
        cc = _CUSTOMERS.c
        query = _STATES[names] = RawSelect(select(cc.id, *(cc[name] for name in names)).where(
            cc.id.in_(_each("ids"))))
    return {cid: dict(zip(names, values, strict=True))
            for cid, *values in query.all(conn, {"ids": _array(ids)})}


def identities_of(conn: Connection, ids: Sequence[int]) -> list[tuple[int, str, str]]:
    """(customer id, kind, value) of every identity of the customers ``ids``."""
    return [(cid, kind, value) for cid, kind, value in
            _IDENTITIES_OF.all(conn, {"ids": _array(ids)})]


def links(
    conn: Connection, customer_ids: Sequence[int], project_ids: Sequence[int]
) -> list[tuple[int, int, int, str | None, str | None]]:
    """(id, customer, project, owner, source) of the links between the two sets."""
    return [(lid, cid, pid, owner, source) for lid, cid, pid, owner, source in
            _LINKS_OF.all(conn, {"ids": _array(customer_ids), "pids": _array(project_ids)})]
