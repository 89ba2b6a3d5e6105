"""Databases created by ``create_all`` before recrm had migrations: recognised, stamped.

A generation's baseline is what the migrations build at the revision that generation
matches (:data:`CORE_GENERATIONS`: the first release f1ec1cd, the CHECK on
customers, the project registry's columns, both), with each installed
plugin's branch whose tables the database holds. A database is compared with them
by name, column, nullability, type family, key, index and constraint; the first one
it matches exactly is stamped, and ``upgrade`` then runs the rest (``core_0004``
drops the stale ``customer_projects.customer_id`` index that databases made before
ebb4d53 carry, which is why that index is not a difference here). A database that
matches none is refused with what differs from the nearest baseline.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, create_engine, inspect

from .errors import SchemaMismatch
from .schema import VERSION_TABLE, core_branch, installed_branches, unmigrated_tables

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

    from .crm import CRM

#: indexes that create_all made in some generation and a later revision drops
STALE_INDEXES = frozenset({"ix_customer_projects_customer_id"})


@dataclass(frozen=True)
class Generation:
    """The core's tables as one line of releases created them."""

    name: str
    #: the revision to stamp such a database at
    stamp: str
    #: the revision whose schema, less ``without_checks``, that generation had
    looks_like: str
    without_checks: frozenset[str] = frozenset()


#: newest first. The CHECK (52dad97) and the project registry (7396de5) landed on
#: parallel branches: a registry-only database is stamped before the CHECK, and
#: core_0003 leaves its columns alone.
CORE_GENERATIONS = (
    Generation("today's (CHECK and registry columns)", "core_0003", "core_0003"),
    Generation("7396de5 (project registry columns)", "core_0001", "core_0003",
               frozenset({"ck_customers_not_self_merged"})),
    Generation("52dad97 (customers CHECK)", "core_0002", "core_0002"),
    Generation("f1ec1cd (first release)", "core_0001", "core_0001"),
)

Shape = dict[str, dict[str, Any]]


def shape(conn: Connection, ignore: Iterable[str] = ()) -> Shape:
    """What the comparison looks at, per table, as the database reports it."""
    insp = inspect(conn)
    skipped = {VERSION_TABLE, *ignore}
    out: Shape = {}
    for table in insp.get_table_names():
        if table in skipped:
            continue
        uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints(table)}
        indexes: dict[str, tuple[tuple[str, ...], bool]] = {}
        for ix in insp.get_indexes(table):
            columns = tuple(c for c in ix["column_names"] if c is not None)
            if ix.get("duplicates_constraint") or ix["name"] in STALE_INDEXES:
                continue
            if ix.get("unique") and not ix.get("dialect_options") and columns in uniques:
                continue  # PostgreSQL lists a UNIQUE constraint's index as well
            indexes[str(ix["name"])] = (columns, bool(ix.get("unique")))
        out[table] = {
            "columns": {c["name"]: (bool(c["nullable"]), _family(c["type"]))
                        for c in insp.get_columns(table)},
            "primary key": tuple(insp.get_pk_constraint(table)["constrained_columns"]),
            "indexes": indexes,
            "unique constraints": uniques,
            "foreign keys": {(tuple(f["constrained_columns"]), f["referred_table"],
                              tuple(f["referred_columns"]))
                             for f in insp.get_foreign_keys(table)},
            "check constraints": {c["name"] for c in insp.get_check_constraints(table)},
        }
    return out


def _family(sqltype: Any) -> str:
    """The kind of a column's type, the same on both backends (DATETIME and
    TIMESTAMP WITH TIME ZONE are both datetimes; lengths are not compared)."""
    affinity = sqltype._type_affinity
    name = affinity.__name__ if affinity is not None else type(sqltype).__name__
    return {"BigInteger": "Integer", "SmallInteger": "Integer", "Text": "String",
            "Unicode": "String", "UnicodeText": "String"}.get(name, name)


def differences(actual: Shape, expected: Shape) -> list[str]:
    """Each way ``actual`` differs from ``expected``, one line each."""
    found: list[str] = []
    for table in sorted(expected.keys() - actual.keys()):
        found.append(f"missing table {table}")
    for table in sorted(actual.keys() - expected.keys()):
        found.append(f"unexpected table {table}")
    for table in sorted(actual.keys() & expected.keys()):
        have, want = actual[table], expected[table]
        for column in sorted(want["columns"].keys() - have["columns"].keys()):
            found.append(f"missing column {table}.{column}")
        for column in sorted(have["columns"].keys() - want["columns"].keys()):
            found.append(f"unexpected column {table}.{column}")
        for column in sorted(have["columns"].keys() & want["columns"].keys()):
            (h_null, h_type), (w_null, w_type) = have["columns"][column], \
                want["columns"][column]
            if h_null != w_null:
                found.append(f"{table}.{column} is {'' if h_null else 'NOT '}NULL, "
                             f"expected {'' if w_null else 'NOT '}NULL")
            if h_type != w_type:
                found.append(f"{table}.{column} is {h_type}, expected {w_type}")
        for aspect in ("primary key", "indexes", "unique constraints", "foreign keys",
                       "check constraints"):
            if have[aspect] != want[aspect]:
                found.append(f"{table}: {aspect} differ ({_delta(have[aspect], want[aspect])})")
    return found


def _delta(have: Any, want: Any) -> str:
    if isinstance(have, dict):
        extra = sorted(k for k in have if have[k] != want.get(k))
        missing = sorted(k for k in want if want[k] != have.get(k))
    elif isinstance(have, set):
        extra, missing = sorted(map(str, have - want)), sorted(map(str, want - have))
    else:
        extra, missing = [str(have)], [str(want)]
    parts = ([f"unexpected {', '.join(map(str, extra))}"] if extra else []) + \
        ([f"missing {', '.join(map(str, missing))}"] if missing else [])
    return "; ".join(parts)


def candidates(present: set[str]) -> list[tuple[Generation, tuple[str, ...]]]:
    """What a create_all database holding tables ``present`` may be: each core
    generation, newest first, with every revision of each plugin branch whose tables
    are there."""
    plugin_revisions = [list(reversed(b.revisions)) for b in installed_branches().values()
                        if b.tables & present]
    return [(generation, plugins) for generation in CORE_GENERATIONS
            for plugins in itertools.product(*plugin_revisions)]


def baseline_shape(script: ScriptDirectory, generation: Generation,
                   plugins: tuple[str, ...]) -> Shape:
    """The schema of ``generation`` with the plugin revisions, built by the
    migrations on an in-memory SQLite."""
    from .migrating import _run

    revisions = (generation.looks_like, *plugins)
    engine = create_engine("sqlite://")
    with engine.begin() as conn:
        for target in revisions:  # one by one: Alembic refuses a target another implies
            _run(script, conn, lambda rev, _c, to=target: script._upgrade_revs(to, rev))
        built = shape(conn)
    for table in built.values():
        table["check constraints"] -= generation.without_checks
    return built


def stamp_baseline(crm: CRM, conn: Connection, script: ScriptDirectory) -> tuple[str, ...]:
    """Stamp the database on ``conn`` (made by create_all, no revision table) at the
    baseline it matches; :class:`SchemaMismatch` with the differences if none."""
    from .migrating import stamp

    ignore = {t.name for t in unmigrated_tables(crm)}
    actual = shape(conn, ignore)
    nearest: list[str] | None = None
    known = set(core_branch().tables).union(*(b.tables for b in installed_branches().values()))
    for generation, plugins in candidates(set(actual) & known):
        found = differences(actual, baseline_shape(script, generation, plugins))
        if not found:
            revisions = (generation.stamp, *plugins)
            stamp(conn, script, revisions)
            return revisions
        if nearest is None or len(found) < len(nearest):
            nearest = found
    assert nearest is not None
    shown = "; ".join(nearest[:10]) + (f"; and {len(nearest) - 10} more"
                                       if len(nearest) > 10 else "")
    raise SchemaMismatch("the database matches no schema recrm ever created, so it is not"
                         f" stamped: {shown}")
