"""The shapes the segment compiler gives link conditions (project fields), each
compared with the one it replaced: the same customers on random data and random
definitions, on SQLite and PostgreSQL; and, on SQLite, the plans that make each fast
where it is used (a count reads a whole set, a page reads customers in id order).

Before session 7 every link group was one correlated ``EXISTS (SELECT * FROM
customer_projects, projects ...)`` (beside customer conditions in an ``all``) or
``id IN (...)``; see recrm_core/segments/sql.py and bench/README.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import ColumnElement, delete, event, exists, insert, select, true, update

from recrm_core import CRM
from recrm_core.segments.parsing import _Group, _Node, _Not
from recrm_core.segments.sql import (
    _combine,
    _is_link,
    _link_columns,
    _many,
    _predicate,
    _scalar,
    _sql,
)
from recrm_core.tables import CustomerProjectRow, CustomerRow, IdentityRow, ProjectRow
from recrm_core.values import PERSONAS, STAGE_RANK, STAGES

Definition = dict[str, Any]
PROJECTS = {"A": "星珑湾", "B": "兴隆二期", "C": "A 区"}
T1, T2 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC), dt.datetime(2024, 6, 1, tzinfo=dt.UTC)


def cond(field: str, op: str, value: Any) -> Definition:
    return {"field": field, "op": op, "value": value}


# -- the form replaced, as it was compiled at the session's start ------------------------------


def _before(node: _Node, cid: ColumnElement[int]) -> ColumnElement[bool]:
    """Each link group one correlated EXISTS over the relationship joined to its
    project (the compiler's ``correlated=True`` form, with the same leaves)."""
    if _is_link(node):
        return _link_exists_before(_link_columns(node, cid), cid)
    if isinstance(node, _Not):
        return _before(node.member, cid).is_not(true())
    if isinstance(node, _Group):
        links = [m for m in node.members if _is_link(m)]
        parts = [_before(m, cid) for m in node.members if not _is_link(m)]
        if links:
            inner = _combine(node.kind, [_link_columns(m, cid) for m in links])
            parts.append(_link_exists_before(inner, cid))
        return _combine(node.kind, parts)
    if node.field.many:
        return _many(node.field, cid, node.op, node.value)
    return _predicate(node.field, _scalar(node.field.expression(cid)), node.op, node.value)


def _link_exists_before(condition: ColumnElement[bool], cid: ColumnElement[int]
                        ) -> ColumnElement[bool]:
    return exists().where(CustomerProjectRow.customer_id == cid,
                          ProjectRow.id == CustomerProjectRow.project_id, condition)


# -- random data ---------------------------------------------------------------------------------

LINKS = st.dictionaries(
    st.sampled_from(sorted(PROJECTS)),
    st.fixed_dictionaries({
        "stage": st.sampled_from(STAGES),
        "owner_staff": st.sampled_from([None, "s1", "s2"]),
        "source": st.sampled_from([None, "ad", "agency"]),
        "first_seen_at": st.sampled_from([T1, T2]),
    }),
    max_size=3,
)
CUSTOMERS = st.lists(
    st.fixed_dictionaries({
        "name": st.sampled_from([None, "王伟", "李娜", "张三"]),
        "persona": st.sampled_from([None, *PERSONAS]),
        "budget": st.sampled_from([None, 1_000_000, 3_000_000]),
        "stage": st.sampled_from(STAGES),
        "mobiles": st.integers(0, 2),
        "merged": st.integers(0, 9),  # 0: merged into the first customer
        "erased": st.integers(0, 9),  # 0: erased
        "links": LINKS,
    }),
    min_size=4, max_size=16,
)


def _mobile(i: int, k: int) -> str:
    return f"+86{137 - k}000{i:05d}"


def _customer(links: dict[str, dict[str, Any]], mobiles: int = 0) -> dict[str, Any]:
    """A customer for an explicit example: nothing but ``links`` and ``mobiles``."""
    return {"name": None, "persona": None, "budget": None, "stage": "prospect",
            "mobiles": mobiles, "merged": 1, "erased": 1,
            "links": {code: {"stage": "prospect", "owner_staff": None, "source": None,
                             "first_seen_at": T1, **link} for code, link in links.items()}}


def load(crm: CRM, customers: list[dict[str, Any]]) -> None:
    """Replace what the tables hold with ``customers`` (raw rows: fast enough to
    run for every example)."""
    with crm.engine.begin() as conn:
        conn.execute(update(CustomerRow).values(merged_into=None))
        for table in (IdentityRow, CustomerProjectRow, CustomerRow, ProjectRow):
            conn.execute(delete(table))
        conn.execute(insert(ProjectRow), [{"id": i + 1, "code": code, "name": name}
                                          for i, (code, name) in enumerate(PROJECTS.items())])
        project_ids = {code: i + 1 for i, code in enumerate(PROJECTS)}
        conn.execute(insert(CustomerRow), [
            {"id": i + 1, "name": c["name"], "persona": c["persona"], "budget": c["budget"],
             "stage": c["stage"], "merged_into": 1 if c["merged"] == 0 and i > 0 else None,
             "erased_at": T2 if c["erased"] == 0 else None}
            for i, c in enumerate(customers)])
        identities = [{"customer_id": i + 1, "kind": "mobile", "value": _mobile(i, k),
                       "display": _mobile(i, k)}
                      for i, c in enumerate(customers) for k in range(c["mobiles"])]
        if identities:
            conn.execute(insert(IdentityRow), identities)
        links = [{"customer_id": i + 1, "project_id": project_ids[code], **link}
                 for i, c in enumerate(customers) for code, link in c["links"].items()]
        if links:
            conn.execute(insert(CustomerProjectRow), links)


# -- random definitions --------------------------------------------------------------------------


def _leaf(name: str, values: list[Any], ops: tuple[str, ...],
          key: Callable[[Any], Any] | None = None) -> st.SearchStrategy[Definition]:
    def build(op: str, chosen: list[Any], null: bool) -> Definition:
        if op == "is_null":
            return cond(name, op, null)
        if op in ("in", "not_in"):
            return cond(name, op, chosen)
        if op == "between":
            return cond(name, op, sorted((chosen * 2)[:2], key=key))
        return cond(name, op, chosen[0])

    return st.builds(build, st.sampled_from(ops),
                     st.lists(st.sampled_from(values), min_size=1, max_size=3), st.booleans())


_ENUM = ("eq", "ne", "in", "not_in", "is_null")
_ORDERED = (*_ENUM, "gt", "gte", "lt", "lte", "between")
_STAGE = STAGE_RANK.__getitem__
CUSTOMER_LEAVES = st.one_of(
    _leaf("persona", list(PERSONAS), _ENUM),
    _leaf("budget", [1_000_000, 2_000_000, 3_000_000], _ORDERED),
    _leaf("name", ["王", "王伟", "娜"], ("eq", "ne", "contains", "is_null")),
    _leaf("stage", list(STAGES), _ORDERED, _STAGE),
    _leaf("mobile", [_mobile(0, 0), _mobile(1, 1), _mobile(2, 0)], _ENUM),
    _leaf("consent.email.marketing", [True, False], ("eq", "ne")),
)
LINK_LEAVES = st.one_of(
    _leaf("project", sorted(PROJECTS), ("eq", "ne", "in", "not_in")),
    _leaf("project_name", [*PROJECTS.values(), "区"], ("eq", "ne", "contains")),
    _leaf("project_stage", list(STAGES), _ORDERED, _STAGE),
    _leaf("owner_staff", ["s1", "s2"], _ENUM),
    _leaf("source", ["ad", "agency"], _ENUM),
    _leaf("first_seen_at", ["2024-01-01T00:00:00+00:00", "2024-03-01T00:00:00+00:00"],
          ("gt", "lte", "between")),
)
# groups of link conditions alone: one relationship, what the project is and what
# the relationship holds mixed (random trees rarely make them)
LINK_GROUPS = st.builds(lambda kind, members: {kind: members}, st.sampled_from(["all", "any"]),
                        st.lists(LINK_LEAVES, min_size=2, max_size=4))
DEFINITIONS = st.recursive(
    st.one_of(CUSTOMER_LEAVES, LINK_LEAVES, LINK_GROUPS),
    lambda children: st.one_of(
        st.builds(lambda m: {"all": m}, st.lists(children, max_size=4)),
        st.builds(lambda m: {"any": m}, st.lists(children, max_size=4)),
        st.builds(lambda m: {"not": m}, children),
    ),
    max_leaves=10,
)


def _ids(crm: CRM, condition: ColumnElement[bool]) -> list[int]:
    with crm.engine.connect() as conn:
        return list(conn.scalars(select(CustomerRow.id).where(condition)
                                 .order_by(CustomerRow.id)))


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(customers=CUSTOMERS, definition=DEFINITIONS)
# What the project is, beside what the relationship holds, in one `any`: the
# project conditions become one `project_id IN (...)` that must keep the `any`.
@example(customers=[_customer({"B": {}}), _customer({"A": {"owner_staff": "s1"}}),
                    _customer({"C": {}})],
         definition={"any": [cond("project", "eq", "A"), cond("project_name", "eq", "兴隆二期"),
                             cond("owner_staff", "eq", "s1")]})
# A customer condition reading another table (mobiles), negated, joined inside.
@example(customers=[_customer({"A": {}}, mobiles=1), _customer({"A": {}}), _customer({})],
         definition={"all": [cond("project", "in", ["A", "B"]),
                             {"not": cond("mobile", "eq", _mobile(0, 0))}]})
def test_every_form_finds_the_customers_the_old_form_found(
    crm: CRM, customers: list[dict[str, Any]], definition: Definition
) -> None:
    load(crm, customers)
    node = crm.segments._parse(definition)
    cid = CustomerRow.id.expression
    expected = _ids(crm, CustomerRow.merged_into.is_(None) & CustomerRow.erased_at.is_(None)
                    & _before(node, cid))
    # every form on both backends (whole_join is what counts use on SQLite)
    for form in ("stream", "whole", "whole_join"):
        assert _ids(crm, _sql(node, form)) == expected, form
    assert crm.segments.count(definition) == len(expected)
    assert list(crm.segments.iter_ids(definition, batch_size=2)) == expected
    assert _ids(crm, crm.segments.compile(definition)) == expected


# -- plans (SQLite) ------------------------------------------------------------------------------


def _plans(crm: CRM, work: Callable[[], object], marker: str) -> list[list[str]]:
    """EXPLAIN QUERY PLAN of each SELECT ``work`` runs that contains ``marker``."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and marker in statement:
            seen.append((statement, parameters))

    event.listen(crm.engine, "before_cursor_execute", record)
    try:
        work()
    finally:
        event.remove(crm.engine, "before_cursor_execute", record)
    with crm.engine.connect() as conn:
        return [[row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {s}", p)]
                for s, p in seen]


@pytest.fixture
def sqlite_crm(crm: CRM) -> CRM:
    if crm.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's plans; PostgreSQL plans these forms as semi-joins alike")
    load(crm, [{"name": f"客户{i}", "persona": PERSONAS[i % 5], "budget": None,
                "stage": "prospect", "mobiles": 1, "merged": 1, "erased": 1,
                "links": {"AB"[i % 2]: {"stage": "visitor", "owner_staff": None,
                                        "source": None, "first_seen_at": T1}}}
               for i in range(40)])
    return crm


def test_a_count_beside_customer_conditions_runs_no_subquery_per_customer(
    sqlite_crm: CRM,
) -> None:
    # Before: a correlated EXISTS, run (opening its cursors) for every customer the
    # customer conditions let through: 1.5x the hand-written join on 1M customers.
    definition = {"all": [cond("project", "eq", "A"), cond("persona", "eq", "investor")]}
    [plan] = _plans(sqlite_crm, lambda: sqlite_crm.segments.count(definition),
                    "count(")
    assert not any("CORRELATED" in step for step in plan), plan
    assert sqlite_crm.segments.count(definition) == 4


def test_a_page_reads_customers_from_its_keyset_bound(sqlite_crm: CRM) -> None:
    # Before: `id IN (every customer of the project)`, built whole again for every
    # page: 0.16 s of CPU a page on 1M customers, an export quadratic in its size.
    definition = cond("project", "eq", "B")
    plans = _plans(sqlite_crm, lambda: sqlite_crm.segments.page(definition, 5, after=10),
                   "LIMIT")
    assert len(plans) == 1 and "(rowid>?)" in plans[0][0], plans
    assert not any("LIST SUBQUERY" in step and "customer_projects" in nxt
                   for step, nxt in zip(plans[0], plans[0][1:], strict=False)), plans
    assert [c.id for c in sqlite_crm.segments.page(definition, 5, after=10)[0]] == [
        12, 14, 16, 18, 20]


def test_a_page_bounds_the_relationships_it_probes_by_its_start(crm: CRM) -> None:
    # Before: PostgreSQL read customer_projects from the first customer for every
    # page (it carries no range across `customer_id = customers.id`): 0.45 s a page
    # of `project = P2` after id 500,000 on 1M customers, 12 ms with the bound.
    load(crm, [_customer({"AB"[i % 2]: {}}) for i in range(20)])
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "LIMIT" in statement.upper():
            seen.append(statement)

    event.listen(crm.engine, "before_cursor_execute", record)
    try:
        found = list(crm.segments.iter_ids(cond("project", "eq", "B"), batch_size=4))
    finally:
        event.remove(crm.engine, "before_cursor_execute", record)
    assert found == [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]
    assert len(seen) == 3
    assert "customer_projects.customer_id >" not in seen[0]  # the first page: no start
    assert all("customer_projects.customer_id >" in s for s in seen[1:]), seen[1]
