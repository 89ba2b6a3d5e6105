"""The segment compiler: JSON definitions -> SQL, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Column,
    ColumnElement,
    ForeignKey,
    Integer,
    String,
    Table,
    event,
    func,
    insert,
    inspect,
    select,
)

from recrm_core import CRM, ConfigError, InvalidInput, PluginError, hookimpl
from recrm_core.db import Base
from recrm_core.segments import OPS, SegmentField
from recrm_core.tables import CustomerRow
from recrm_core.testing import RecrmCliRunner
from recrm_core.values import PERSONAS, STAGE_RANK, STAGES

Definition = dict[str, Any]


def cond(field: str, op: str, value: Any) -> Definition:
    return {"field": field, "op": op, "value": value}


@dataclass
class People:
    """A small company: who is who, by role in the tests."""

    wang: int  # investor, 300万, owner at A and visitor at B, two mobiles
    li: int  # first_time, 150万, owner at B
    zhang: int  # no persona/budget, prospect at A owned by s1
    zhao: int  # nameless luxury lead, no project
    dup: int  # merged into wang (persona investor, budget 999万)
    ids: list[int] = field(default_factory=list)


@pytest.fixture
def people(crm: CRM) -> People:
    add = crm.customers.add
    wang = add({"name": "王伟", "mobiles": ["13800000001", "13800000011"], "persona": "investor",
                "budget": "300万", "gender": "男", "birth_date": "1980-05-01",
                "email": "Wang.Wei@Example.com", "external_id": "W-1", "source_system": "erp",
                "project": "A", "source": "ad", "owner_staff": "s2"}).customer.id
    li = add({"name": "李娜 50%_off", "mobile": "13800000002", "persona": "刚需",
              "budget": 1_500_000, "gender": "女", "birth_date": "1992-03-10",
              "email": "li@example.com"}).customer.id
    zhang = add({"name": "张三", "mobile": "13800000003", "project": "A",
                 "owner_staff": "s1"}).customer.id
    zhao = add({"mobile": "13800000004", "persona": "luxury", "budget": "1000万"}).customer.id
    dup = add({"name": "王伟(重复)", "mobile": "13800000005", "persona": "investor",
               "budget": "999万", "project": "C"}).customer.id
    crm.customers.set_stage(wang, "owner", "A")
    crm.customers.set_stage(wang, "visitor", "B")
    crm.customers.set_stage(li, "owner", "B")
    crm.customers.set_stage(dup, "buyer", "C")
    crm.customers.merge(wang, dup)
    return People(wang, li, zhang, zhao, dup, [wang, li, zhang, zhao])


def ids(crm: CRM, definition: Definition) -> list[int]:
    found = list(crm.segments.iter_ids(definition))
    assert crm.segments.count(definition) == len(found)
    return found


# -- operators on every kind of field ------------------------------------------------------


def test_eq_and_ne(crm: CRM, people: People) -> None:
    p = people
    assert ids(crm, cond("name", "eq", "王伟")) == [p.wang]
    assert ids(crm, cond("persona", "eq", "刚需")) == [p.li]  # Chinese persona names coerced
    assert ids(crm, cond("gender", "eq", "F")) == [p.li]
    assert ids(crm, cond("id", "eq", p.zhang)) == [p.zhang]
    assert ids(crm, cond("id", "eq", str(p.zhang))) == [p.zhang]
    assert ids(crm, cond("email", "eq", "WANG.WEI@example.COM")) == [p.wang]
    assert ids(crm, cond("budget", "eq", "150万")) == [p.li]
    assert ids(crm, cond("birth_date", "eq", "1992-03-10")) == [p.li]
    assert ids(crm, cond("external_id", "eq", "W-1")) == [p.wang]
    # ne is the exact negation of eq, so customers without a persona are included
    assert ids(crm, cond("persona", "ne", "investor")) == [p.li, p.zhang, p.zhao]
    assert ids(crm, cond("name", "ne", "王伟")) == [p.li, p.zhang, p.zhao]


def test_in_and_not_in(crm: CRM, people: People) -> None:
    p = people
    assert ids(crm, cond("persona", "in", ["investor", "高端"])) == [p.wang, p.zhao]
    assert ids(crm, cond("persona", "not_in", ["investor", "luxury"])) == [p.li, p.zhang]
    assert ids(crm, cond("stage", "in", ["owner"])) == [p.wang, p.li]
    assert ids(crm, cond("id", "not_in", [p.wang, p.li])) == [p.zhang, p.zhao]
    assert ids(crm, cond("gender", "in", ["男", "female"])) == [p.wang, p.li]


def test_ordering_on_money_dates_and_times(crm: CRM, people: People) -> None:
    p = people
    assert ids(crm, cond("budget", "gt", "150万")) == [p.wang, p.zhao]
    assert ids(crm, cond("budget", "gte", 1_500_000)) == [p.wang, p.li, p.zhao]
    assert ids(crm, cond("budget", "lt", "1,500,000")) == []
    assert ids(crm, cond("budget", "lte", "300万")) == [p.wang, p.li]
    assert ids(crm, cond("budget", "between", ["150万", "300万"])) == [p.wang, p.li]
    assert ids(crm, cond("birth_date", "lt", "1990-01-01")) == [p.wang]
    assert ids(crm, cond("birth_date", "between", ["1980/5/1", "1992年3月10日"])) == [p.wang, p.li]
    assert ids(crm, cond("id", "gte", p.zhang)) == [p.zhang, p.zhao]
    assert ids(crm, cond("created_at", "gt", "2000-01-01")) == p.ids
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    assert ids(crm, cond("created_at", "gte", tomorrow)) == []
    assert ids(crm, cond("updated_at", "lt", tomorrow)) == p.ids
    assert ids(crm, cond("first_seen_at", "lte", "2999-12-31T23:59:59+08:00")) == [
        p.wang, p.li, p.zhang
    ]
    # text compares in the database's collation; plain ASCII orders the same everywhere
    assert ids(crm, cond("external_id", "gt", "A")) == [p.wang]
    assert ids(crm, cond("external_id", "lte", "A")) == []


def test_datetime_without_zone_is_business_local(crm: CRM, people: People) -> None:
    # The customers were created just now: a naive "now" in Asia/Shanghai is
    # 8 hours after a naive "now" read as UTC would be, so it must include them.
    local_now = dt.datetime.now(crm.config.zone).replace(tzinfo=None) + dt.timedelta(minutes=5)
    assert crm.segments.count(cond("created_at", "lt", local_now.isoformat())) == 4
    an_hour_ago = local_now - dt.timedelta(hours=1)
    assert crm.segments.count(cond("created_at", "lt", an_hour_ago.isoformat())) == 0


def test_stage_compares_in_funnel_order(crm: CRM, people: People) -> None:
    p = people
    # alphabetically "buyer" < "owner" < "prospect" < "subscriber" < "visitor"
    assert ids(crm, cond("stage", "gt", "visitor")) == [p.wang, p.li]
    assert ids(crm, cond("stage", "lt", "visitor")) == [p.zhang, p.zhao]
    assert ids(crm, cond("stage", "lte", "owner")) == p.ids
    assert ids(crm, cond("stage", "gte", "subscriber")) == [p.wang, p.li]
    assert ids(crm, cond("stage", "between", ["prospect", "buyer"])) == [p.zhang, p.zhao]
    assert ids(crm, cond("project_stage", "between", ["visitor", "buyer"])) == [p.wang]
    assert ids(crm, cond("project_stage", "lt", "owner")) == [p.wang, p.zhang]
    crm.customers.set_stage(p.zhang, "subscriber", "A")
    assert ids(crm, cond("stage", "between", ["visitor", "buyer"])) == [p.zhang]


def test_contains_is_literal_and_case_sensitive(crm: CRM, people: People) -> None:
    p = people
    anna = crm.customers.add({"name": "Anna Smith", "mobile": "13800000006"}).customer.id
    assert ids(crm, cond("name", "contains", "伟")) == [p.wang]
    assert ids(crm, cond("name", "contains", "%")) == [p.li]
    assert ids(crm, cond("name", "contains", "50%_")) == [p.li]
    assert ids(crm, cond("name", "contains", "_")) == [p.li]
    assert ids(crm, cond("name", "contains", "5_%")) == []  # a wildcard would match "50%_"
    assert crm.segments.count(cond("name", "contains", "Smith")) == 1
    assert crm.segments.count(cond("name", "contains", "smith")) == 0
    assert ids(crm, cond("email", "contains", "@Example.com")) == [p.wang, p.li]
    assert ids(crm, cond("mobile", "contains", "0011")) == [p.wang]
    assert ids(crm, cond("mobile", "contains", "+86 138000000")) == [
        p.wang, p.li, p.zhang, p.zhao, anna
    ]
    assert ids(crm, cond("owner_staff", "contains", "s")) == [p.wang, p.zhang]


def test_is_null(crm: CRM, people: People) -> None:
    p = people
    assert ids(crm, cond("persona", "is_null", True)) == [p.zhang]
    assert ids(crm, cond("persona", "is_null", False)) == [p.wang, p.li, p.zhao]
    assert ids(crm, cond("name", "is_null", True)) == [p.zhao]
    assert ids(crm, cond("budget", "is_null", True)) == [p.zhang]
    assert ids(crm, cond("id_card", "is_null", False)) == []
    assert ids(crm, cond("mobile", "is_null", True)) == []
    # project fields look at the relationships: "has some project" / "unowned lead"
    assert ids(crm, cond("project", "is_null", False)) == [p.wang, p.li, p.zhang]
    assert ids(crm, cond("owner_staff", "is_null", True)) == [p.wang, p.li]
    assert ids(crm, {"not": cond("project", "is_null", False)}) == [p.zhao]


def test_mobile_matches_any_of_the_customers_mobiles(crm: CRM, people: People) -> None:
    p = people
    assert ids(crm, cond("mobile", "eq", "+86 138-0000-0011")) == [p.wang]
    assert ids(crm, cond("mobile", "eq", "８６１３８００００００01")) == [p.wang]  # full-width
    assert ids(crm, cond("mobile", "in", ["13800000001", "13800000002"])) == [p.wang, p.li]
    # negative ops match customers having none of the values
    assert ids(crm, cond("mobile", "ne", "13800000011")) == [p.li, p.zhang, p.zhao]
    assert ids(crm, cond("mobile", "not_in", ["13800000001", "13800000004"])) == [
        p.li, p.zhang
    ]
    # the merged-away customer's mobile moved to the survivor
    assert ids(crm, cond("mobile", "eq", "13800000005")) == [p.wang]


def test_id_card(crm: CRM, people: People) -> None:
    card = crm.customers.add({"mobile": "13800000007", "id_card": "11010519491231002x"}).customer
    assert ids(crm, cond("id_card", "eq", "11010519491231002X")) == [card.id]
    assert ids(crm, cond("id_card", "in", ["11010519491231002x"])) == [card.id]
    assert ids(crm, cond("id_card", "is_null", False)) == [card.id]
    assert crm.segments.count(cond("id_card", "ne", "11010519491231002X")) == 4


def test_consent_fields(crm: CRM, people: People) -> None:
    p = people
    crm.consent.grant(p.wang, "email")
    crm.consent.grant(p.li, "email")
    crm.consent.withdraw(p.li, "email")
    crm.consent.grant(p.zhang, "sms")
    assert ids(crm, cond("consent.email.marketing", "eq", True)) == [p.wang]
    assert ids(crm, cond("consent.email.marketing", "ne", True)) == [p.li, p.zhang, p.zhao]
    assert ids(crm, cond("consent.email.marketing", "eq", False)) == [p.li, p.zhang, p.zhao]
    assert ids(crm, cond("consent.sms.marketing", "eq", True)) == [p.zhang]
    assert ids(crm, cond("consent.sms.surveys", "eq", True)) == []


# -- structure ---------------------------------------------------------------------------------


def test_nesting_all_any_not(crm: CRM, people: People) -> None:
    p = people
    investor_or_rich = {"any": [cond("persona", "eq", "investor"), cond("budget", "gte", "500万")]}
    assert ids(crm, investor_or_rich) == [p.wang, p.zhao]
    assert ids(crm, {"all": [investor_or_rich, cond("name", "is_null", False)]}) == [p.wang]
    assert ids(crm, {"not": investor_or_rich}) == [p.li, p.zhang]
    nested = {"any": [
        {"all": [cond("gender", "eq", "female"), cond("stage", "eq", "owner")]},
        {"all": [{"not": cond("persona", "is_null", False)}, cond("project", "eq", "A")]},
    ]}
    assert ids(crm, nested) == [p.li, p.zhang]
    assert ids(crm, {"all": []}) == p.ids  # every (active) customer
    assert ids(crm, {"any": []}) == []
    assert ids(crm, {"not": {"all": []}}) == []


def test_not_is_the_exact_complement_despite_missing_values(crm: CRM, people: People) -> None:
    for definition in (
        cond("persona", "eq", "investor"),
        cond("budget", "gt", "200万"),
        cond("name", "contains", "王"),
        {"all": [cond("persona", "ne", "luxury"), cond("budget", "lt", "500万")]},
        {"any": [cond("gender", "eq", "male"), cond("birth_date", "gt", "1990-01-01")]},
    ):
        inside = set(crm.segments.iter_ids(definition))
        outside = set(crm.segments.iter_ids({"not": definition}))
        assert not inside & outside
        assert inside | outside == set(people.ids)


def test_project_conditions_in_one_group_share_one_relationship(
    crm: CRM, people: People
) -> None:
    p = people
    owner_at = {"all": [cond("project", "eq", "B"), cond("project_stage", "eq", "owner")]}
    # wang is owner at A and visitor at B: not an owner AT B
    assert ids(crm, owner_at) == [p.li]
    assert ids(crm, {"all": [cond("project_stage", "eq", "owner"), cond("project", "eq", "A")]}
               ) == [p.wang]
    # the overall stage is a customer field, so here wang (owner somewhere) matches
    assert ids(crm, {"all": [cond("project", "eq", "B"), cond("stage", "eq", "owner")]}) == [
        p.wang, p.li
    ]
    # a group made only of project conditions describes the same relationship too
    assert ids(crm, {"all": [
        cond("project_stage", "eq", "owner"),
        {"any": [cond("project", "eq", "B"), cond("project", "eq", "C")]},
    ]}) == [p.li]
    # mixed with customer conditions in the same group
    assert ids(crm, {"all": [
        cond("persona", "eq", "investor"), cond("project", "eq", "A"),
        cond("project_stage", "eq", "owner"), cond("source", "eq", "ad"),
    ]}) == [p.wang]
    assert ids(crm, {"all": [cond("project", "eq", "A"), cond("owner_staff", "eq", "s2"),
                             cond("project_stage", "lt", "owner")]}) == []
    # `not` looks at the customer: "not linked to A"
    assert ids(crm, {"not": cond("project", "eq", "A")}) == [p.li, p.zhao]
    # while ne is per relationship: "linked to some project other than A"
    assert ids(crm, cond("project", "ne", "A")) == [p.wang, p.li]
    assert ids(crm, cond("project_name", "eq", "B")) == [p.wang, p.li]


def test_merged_customers_never_match(crm: CRM, people: People) -> None:
    p = people
    assert ids(crm, cond("id", "eq", p.dup)) == []
    assert ids(crm, cond("budget", "eq", "999万")) == []
    assert ids(crm, cond("project", "eq", "C")) == [p.wang]  # the link moved to wang
    assert p.dup not in crm.segments.iter_ids({"all": []})
    with crm.unit_of_work() as uow:
        in_table = uow.session.scalar(select(func.count()).select_from(CustomerRow))
    assert in_table == 5 and crm.segments.count({"all": []}) == 4


def test_bare_condition_and_mapping_input(crm: CRM, people: People) -> None:
    assert crm.segments.count(cond("persona", "eq", "investor")) == 1
    assert crm.segments.count({"all": [cond("persona", "eq", "investor")]}) == 1


# -- errors ---------------------------------------------------------------------------------------

BAD_DEFINITIONS: list[tuple[Any, str, str]] = [
    ({"all": [cond("name", "eq", "x"), cond("name", "like", "x")]}, "all[1].op",
     "unknown op 'like' (known: eq, ne, in, not_in, gt, gte, lt, lte, between, contains, "
     "is_null)"),
    ({"any": [{"all": [cond("nmae", "eq", "x")]}]}, "any[0].all[0].field",
     "unknown field 'nmae' (did you mean 'name'?"),
    (cond("shoe_size", "eq", 42), "field", "unknown field 'shoe_size'"),
    (cond("gender", "gt", "male"), "op", "op 'gt' does not apply to field 'gender'"),
    (cond("mobile", "between", ["1", "2"]), "op", "allowed: eq, ne, in, not_in, is_null, "
     "contains"),
    (cond("budget", "gt", "lots"), "value", "budget 'lots' is not a number"),
    (cond("budget", "gt", True), "value", "expected an amount in CNY"),
    (cond("id", "eq", "seven"), "value", "expected a whole number, got 'seven'"),
    (cond("birth_date", "gt", "yesterday"), "value", "date 'yesterday' is not like"),
    (cond("birth_date", "gt", 20240102), "value", "expected a date like '2024-01-02'"),
    (cond("created_at", "gt", "soon"), "value", "'soon' is not a date or date-time"),
    (cond("stage", "gte", "customer"), "value", "stage 'customer' is not one of"),
    (cond("persona", "eq", "rich"), "value", "persona 'rich' is not one of"),
    (cond("mobile", "eq", "12345"), "value", "is not a valid phone number"),
    (cond("mobile", "contains", "138abc"), "value", "digits only"),
    (cond("id_card", "eq", "110105194912310021"), "value", "check character"),
    (cond("email", "eq", "not-an-email"), "value", "is not a valid email"),
    (cond("consent.email.marketing", "eq", "yes"), "value", "expected true or false"),
    (cond("consent.email.marketing", "is_null", True), "op", "does not apply"),
    (cond("name", "in", []), "value", "in takes a non-empty list, got an empty list"),
    (cond("name", "not_in", "王伟"), "value", "not_in takes a non-empty list"),
    (cond("persona", "in", ["investor", "rich"]), "value[1]", "persona 'rich'"),
    (cond("budget", "between", [1]), "value", "between takes [low, high]"),
    (cond("budget", "between", ["300万", "100万"]), "value", "low '300万' is above high"),
    (cond("stage", "between", ["owner", "visitor"]), "value", "is above high"),
    (cond("name", "is_null", "yes"), "value", "is_null takes true or false"),
    (cond("name", "eq", None), "value", "use op 'is_null'"),
    (cond("name", "eq", "  "), "value", "empty text"),
    (cond("name", "eq", ["a"]), "value", "eq takes a single value"),
    (cond("name", "contains", {"x": 1}), "value", "contains takes a single value"),
    (cond("name", "eq", 1.5), "value", "expected text"),
    ({"field": "name", "op": "eq"}, "value", "missing"),
    ({"field": "name", "op": "eq", "value": "x", "valeu": 1}, "segment", "unknown key 'valeu'"),
    ({"all": [cond("name", "eq", "x")], "any": []}, "segment", "cannot have other keys"),
    ({"all": {"field": "name"}}, "all", "expected a list of conditions, got an object"),
    ({"all": ["name"]}, "all[0]", "expected a condition"),
    ({"not": [cond("name", "eq", "x")]}, "not", "got a list"),
    ({}, "field", "missing"),
    ([cond("name", "eq", "x")], "segment", "got a list"),
    ({"field": 3, "op": "eq", "value": 1}, "field", "expected a name, got 3"),
    ({"field": "name", "op": None, "value": 1}, "op", "unknown op null"),
]


@pytest.mark.parametrize(("definition", "where", "reason"), BAD_DEFINITIONS)
def test_bad_definitions_say_where_and_why(
    crm: CRM, definition: Any, where: str, reason: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        crm.segments.compile(definition)
    assert caught.value.field == where
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"{where}: ")


def test_too_deep_nesting_is_refused(crm: CRM) -> None:
    definition: Definition = cond("name", "eq", "x")
    for _ in range(40):
        definition = {"not": definition}
    with pytest.raises(InvalidInput, match="nested deeper than"):
        crm.segments.compile(definition)


def test_streaming_checks_the_definition_before_the_first_row(crm: CRM) -> None:
    with pytest.raises(InvalidInput, match="unknown field"):
        crm.segments.iter_ids(cond("nope", "eq", 1))  # no next(): raises on the call
    with pytest.raises(InvalidInput, match="unknown op"):
        crm.segments.iter_customers(cond("name", "like", 1))
    with pytest.raises(InvalidInput, match="batch_size"):
        crm.segments.iter_ids({"all": []}, batch_size=0)


# -- bound parameters ---------------------------------------------------------------------------


def test_values_are_bound_parameters_never_sql(crm: CRM, people: People) -> None:
    evil = "O'Brien'); DROP TABLE customers; --"
    obrien = crm.customers.add({"name": evil, "mobile": "13800000008"}).customer.id
    crm.projects.ensure("A' OR 'x'='x")  # a segment may name only a known project
    definition = {"any": [
        cond("name", "eq", evil),
        cond("name", "contains", "'; DELETE FROM identities; --"),
        cond("name", "in", [evil, "x' OR '1'='1"]),
        cond("external_id", "eq", "' OR 1=1 --"),
        cond("project", "eq", "A' OR 'x'='x"),
    ]}
    expression = crm.segments.compile(definition)
    sql = str(select(CustomerRow.id).where(expression).compile(dialect=crm.engine.dialect))
    for fragment in ("O'Brien", "DROP TABLE", "DELETE FROM", "OR '1'", "OR 1=1", "'x'='x"):
        assert fragment not in sql
    assert ids(crm, definition) == [obrien]
    assert ids(crm, cond("name", "contains", "'); DROP")) == [obrien]
    assert crm.segments.count({"all": []}) == 5  # nothing was dropped or deleted
    assert inspect(crm.engine).has_table("customers")


def test_compile_returns_an_expression_over_customers(crm: CRM, people: People) -> None:
    expression = crm.segments.compile(cond("persona", "eq", "investor"))
    assert isinstance(expression, ColumnElement)
    with crm.unit_of_work() as uow:
        names = uow.session.scalars(select(CustomerRow.name).where(expression)).all()
    assert names == ["王伟"]


# -- streaming ----------------------------------------------------------------------------------


@pytest.fixture
def many(crm: CRM) -> list[int]:
    customers = [
        crm.customers.add({"mobile": f"139{i:08d}", "persona": PERSONAS[i % 5], "name": f"客户{i}"})
        for i in range(23)
    ]
    return [c.customer.id for c in customers]


def count_selects(crm: CRM) -> tuple[list[str], Callable[[], None]]:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(crm.engine, "before_cursor_execute", record)
    return statements, lambda: event.remove(crm.engine, "before_cursor_execute", record)


def test_iter_ids_streams_in_batches_in_id_order(crm: CRM, many: list[int]) -> None:
    statements, stop = count_selects(crm)
    try:
        stream = crm.segments.iter_ids({"all": []}, batch_size=5)
        assert statements == []  # nothing read before the first next()
        first = [next(stream) for _ in range(5)]
        assert len(statements) == 1 and first == many[:5]
        late = crm.customers.add({"mobile": "13700000000"}).customer.id  # id above all others
        statements.clear()
        rest = list(stream)
    finally:
        stop()
    assert rest == [*many[5:], late]
    # 19 remaining ids at 5 a batch: 4 more keyset queries, each bounded by LIMIT
    assert len(statements) == 4
    assert all("LIMIT" in s.upper() for s in statements)


def test_iter_ids_exact_multiple_of_batch_size(crm: CRM, many: list[int]) -> None:
    definition = cond("persona", "in", ["first_time", "upgrader", "investor", "luxury"])
    expected = [cid for i, cid in enumerate(many) if i % 5 != 4]
    assert len(expected) == 19
    assert list(crm.segments.iter_ids(definition, batch_size=1)) == expected
    assert list(crm.segments.iter_ids(definition, batch_size=19)) == expected
    assert list(crm.segments.iter_ids(definition, batch_size=1000)) == expected
    assert list(crm.segments.iter_ids(cond("persona", "eq", "retiree"), batch_size=2)) == [
        many[4], many[9], many[14], many[19]
    ]


def test_iter_customers_loads_models_in_batches(crm: CRM, many: list[int]) -> None:
    got = list(crm.segments.iter_customers(cond("persona", "eq", "investor"), batch_size=2))
    assert [c.id for c in got] == [many[i] for i in (2, 7, 12, 17, 22)]
    assert got[0].persona == "investor"
    assert got[0].mobiles == ["+8613900000002"]
    assert got[0].name == "客户2"
    assert list(crm.segments.iter_customers({"any": []})) == []


# -- fields and plugins -------------------------------------------------------------------------


def test_fields_lists_core_fields(crm: CRM) -> None:
    fields = {f.name: f for f in crm.segments.fields()}
    for name in ("id", "name", "gender", "birth_date", "persona", "budget", "email", "stage",
                 "source_system", "external_id", "created_at", "updated_at", "mobile",
                 "id_card", "project", "project_stage", "owner_staff", "source",
                 "first_seen_at", "consent.email.marketing"):
        assert name in fields, name
        assert fields[name].description
        assert set(fields[name].allowed_ops) <= set(OPS)
    assert fields["stage"].type == "stage"
    assert fields["mobile"].many


def segtest_tags() -> Table:
    """The test plugin's table, declared once on the shared metadata (unique name)."""
    existing = Base.metadata.tables.get("segtest_tags")
    if existing is not None:
        return existing
    return Table(
        "segtest_tags",
        Base.metadata,
        Column("id", Integer, primary_key=True),
        Column("customer_id", ForeignKey("customers.id"), nullable=False, index=True),
        Column("tag", String(32), nullable=False),
    )


class SegTestPlugin:
    """Tags customers; offers ``segtest.tag`` (many) and ``segtest.tags`` (count)."""

    name = "segtest"

    def __init__(self) -> None:
        self.calls = 0
        self.tags = segtest_tags()  # declared before registering, so create_schema sees it

    @hookimpl
    def recrm_segment_fields(self, register: Callable[[SegmentField], None]) -> None:
        self.calls += 1
        tags = segtest_tags()
        register(SegmentField(
            "segtest.tag",
            lambda cid: select(tags.c.tag).where(tags.c.customer_id == cid),
            "str", "a tag of the customer", many=True,
        ))
        register(SegmentField(
            "segtest.tags",
            # a plain Select: the compiler makes it a scalar subquery
            lambda cid: select(func.count()).where(tags.c.customer_id == cid),
            "int", "number of tags",
        ))


def test_hook_recrm_segment_fields(
    crm: CRM, people: People, register_plugin: Callable[..., str]
) -> None:
    p = people
    with pytest.raises(InvalidInput, match=re.escape("unknown field 'segtest.tag'")):
        crm.segments.compile(cond("segtest.tag", "eq", "vip"))
    plugin = SegTestPlugin()
    register_plugin(plugin)  # creates segtest_tags through create_schema
    tags = segtest_tags()
    with crm.unit_of_work() as uow:
        uow.session.execute(insert(tags), [
            {"customer_id": p.li, "tag": "vip"},
            {"customer_id": p.li, "tag": "golf"},
            {"customer_id": p.zhao, "tag": "vip"},
            {"customer_id": p.wang, "tag": "golf"},
        ])
    assert ids(crm, cond("segtest.tag", "eq", "vip")) == [p.li, p.zhao]
    assert ids(crm, cond("segtest.tag", "ne", "vip")) == [p.wang, p.zhang]
    assert ids(crm, cond("segtest.tag", "is_null", True)) == [p.zhang]
    assert ids(crm, cond("segtest.tags", "gte", 2)) == [p.li]
    assert ids(crm, cond("segtest.tags", "eq", 0)) == [p.zhang]
    assert ids(crm, {"all": [cond("segtest.tag", "eq", "vip"), cond("stage", "eq", "owner")]}
               ) == [p.li]
    assert {f.name for f in crm.segments.fields()} >= {"segtest.tag", "segtest.tags"}
    assert plugin.calls == 1  # collected once, not per compile
    with pytest.raises(InvalidInput, match="op 'contains' does not apply"):
        crm.segments.compile(cond("segtest.tags", "contains", "1"))


@pytest.mark.parametrize(("bad", "message"), [
    (SegmentField("tag", lambda cid: cid), "named '<plugin>.<field>'"),
    (SegmentField("segtest.a-b", lambda cid: cid), "named '<plugin>.<field>'"),
    (SegmentField("consent.email.extra", lambda cid: cid, "bool"), "prefix is the core's"),
    (SegmentField("segtest.x", lambda cid: cid, "colour"), "unknown type 'colour'"),
    (SegmentField("segtest.x", lambda cid: cid, "int", ops=("contains",)), "do not apply"),
    ("segtest.x", "takes a SegmentField"),
])
def test_plugin_fields_are_validated(
    crm: CRM, register_plugin: Callable[..., str], bad: object, message: str
) -> None:
    class Broken:
        name = "segtest"

        @hookimpl
        def recrm_segment_fields(self, register: Callable[[object], None]) -> None:
            register(bad)

    register_plugin(Broken())
    with pytest.raises(ConfigError, match=message):
        crm.segments.count({"all": []})


def test_duplicate_plugin_fields_are_refused(
    crm: CRM, register_plugin: Callable[..., str]
) -> None:
    register_plugin(SegTestPlugin())
    register_plugin(SegTestPlugin(), name="segtest-again")
    with pytest.raises(ConfigError, match=re.escape(
        "'segtest.tag' is registered twice: by plugin 'segtest' and by plugin 'segtest-again'"
    )):
        crm.segments.fields()


def test_a_raising_plugin_is_named(crm: CRM, register_plugin: Callable[..., str]) -> None:
    class Raising:
        @hookimpl
        def recrm_segment_fields(self, register: Callable[[SegmentField], None]) -> None:
            raise RuntimeError("boom")

    register_plugin(Raising(), name="raising")
    with pytest.raises(PluginError, match="raising"):
        crm.segments.fields()


# -- CLI ------------------------------------------------------------------------------------------


def test_cli_count_inline_and_file(
    cli_runner: RecrmCliRunner, people: People, tmp_path: Path
) -> None:
    definition = {"all": [cond("project", "eq", "B"), cond("project_stage", "eq", "owner")]}
    result = cli_runner.invoke("customers", "count", "--segment", json.dumps(definition), "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == '{"count":1}'
    path = tmp_path / "owners.json"
    path.write_text(json.dumps(cond("stage", "eq", "owner"), ensure_ascii=False), "utf-8")
    result = cli_runner.invoke("customers", "count", "--segment", str(path), "--json")
    assert result.exit_code == 0 and result.json() == {"count": 2}
    result = cli_runner.invoke("customers", "count", "--segment", json.dumps(cond(
        "persona", "eq", "投资"), ensure_ascii=False))
    assert result.exit_code == 0 and result.stdout.strip() == "1"


@pytest.mark.parametrize(("segment", "expected"), [
    ('{"all": [', "not valid JSON"),
    ('{"field": "shoe_size", "op": "eq", "value": 1}', "field: unknown field 'shoe_size'"),
    ('{"all": [{"field": "name", "op": "like", "value": "王"}]}', "all[0].op: unknown op 'like'"),
    ('{"field": "budget", "op": "gt", "value": "lots"}', "value: budget 'lots' is not a number"),
    ("/nonexistent/segment.json", "cannot read"),
])
def test_cli_count_bad_segment_exits_2(
    cli_runner: RecrmCliRunner, segment: str, expected: str
) -> None:
    result = cli_runner.invoke("customers", "count", "--segment", segment, "--json")
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0]
    assert "Traceback" not in result.stderr


# -- property: the compiled SQL agrees with a Python reading of the rules ---------------------

PROJECTS = ("A", "B", "C")
LINK_FIELDS = {"project", "project_stage", "owner_staff"}


@dataclass
class Row:
    """What the oracle knows of one active customer."""

    id: int
    name: str | None
    persona: str | None
    budget: int | None
    stage: str
    mobiles: list[str]
    links: list[dict[str, Any]]


@pytest.fixture
def population(crm: CRM) -> list[Row]:
    import random

    rng = random.Random(20240601)
    added: list[int] = []
    for i in range(30):
        record: dict[str, Any] = {"mobile": f"1370000{i:04d}"}
        if rng.random() < 0.7:
            record["name"] = rng.choice(["王", "李", "张", "王伟", "50%", "a_b"]) + str(i % 3)
        if rng.random() < 0.7:
            record["persona"] = rng.choice(PERSONAS)
        if rng.random() < 0.7:
            record["budget"] = rng.choice([100, 200, 300, 500]) * 10_000
        if rng.random() < 0.3:
            record["mobiles"] = [f"1360000{i:04d}"]
        cid = crm.customers.add(record).customer.id
        for project in rng.sample(PROJECTS, rng.randint(0, 3)):
            crm.customers.add({"mobile": record["mobile"], "project": project,
                               "owner_staff": rng.choice([None, "s1", "s2"])})
            crm.customers.set_stage(cid, rng.choice(STAGES), project, force=True)
        added.append(cid)
    for survivor, duplicate in ((added[0], added[1]), (added[2], added[3])):
        crm.customers.merge(survivor, duplicate)
    rows = []
    for c in crm.segments.iter_customers({"all": []}):
        rows.append(Row(
            c.id, c.name, c.persona, c.budget, c.stage, list(c.mobiles),
            [{"project": p.project, "project_stage": p.stage, "owner_staff": p.owner_staff}
             for p in c.projects],
        ))
    assert len(rows) == 28
    return rows


def _stage_value(lst: list[str]) -> list[str]:
    return sorted(lst, key=STAGE_RANK.__getitem__)


def _conditions(name: str, values: st.SearchStrategy[Any], ops: tuple[str, ...],
                ordered_by: Callable[[Any], Any] | None = None) -> st.SearchStrategy[Definition]:
    def build(op: str, draw_values: list[Any], null: bool) -> Definition:
        if op == "is_null":
            return cond(name, op, null)
        if op in ("in", "not_in"):
            return cond(name, op, draw_values)
        if op == "between":
            return cond(name, op, sorted((draw_values * 2)[:2], key=ordered_by))
        return cond(name, op, draw_values[0])

    return st.builds(build, st.sampled_from(ops), st.lists(values, min_size=1, max_size=3),
                     st.booleans())


_ORDERED = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between", "is_null")
LEAVES = st.one_of(
    _conditions("persona", st.sampled_from(PERSONAS), ("eq", "ne", "in", "not_in", "is_null")),
    _conditions("budget", st.sampled_from([100, 200, 300, 400, 500]).map(lambda v: v * 10_000),
                _ORDERED),
    _conditions("stage", st.sampled_from(STAGES), _ORDERED, STAGE_RANK.__getitem__),
    _conditions("name", st.sampled_from(["王", "王伟", "50%", "_", "a_b1", "1", "张2"]),
                ("eq", "ne", "in", "not_in", "contains", "is_null")),
    _conditions("mobile", st.sampled_from(["+8613700000005", "+8613600000007",
                                           "+8613700000001"]),
                ("eq", "ne", "in", "not_in", "is_null")),
    _conditions("mobile", st.sampled_from(["0000", "+86136", "1"]), ("contains",)),
    _conditions("project", st.sampled_from(PROJECTS), ("eq", "ne", "in", "not_in")),
    _conditions("project_stage", st.sampled_from(STAGES), _ORDERED, STAGE_RANK.__getitem__),
    _conditions("owner_staff", st.sampled_from(["s1", "s2"]), ("eq", "ne", "is_null")),
)
DEFINITIONS = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        st.builds(lambda m: {"all": m}, st.lists(children, max_size=4)),
        st.builds(lambda m: {"any": m}, st.lists(children, max_size=4)),
        st.builds(lambda m: {"not": m}, children),
    ),
    max_leaves=8,
)


def _holds(op: str, x: Any, v: Any, field_name: str) -> bool:
    key: Callable[[Any], Any] = (
        STAGE_RANK.__getitem__ if field_name in ("stage", "project_stage") else (lambda a: a)
    )
    if op == "is_null":
        return (x is None) is v
    if op == "ne":
        return not _holds("eq", x, v, field_name)
    if op == "not_in":
        return not _holds("in", x, v, field_name)
    if x is None:
        return False
    if op == "eq":
        return bool(x == v)
    if op == "in":
        return x in v
    if op == "contains":
        return v in x
    if op == "between":
        return bool(key(v[0]) <= key(x) <= key(v[1]))
    compare: dict[str, Callable[[Any, Any], bool]] = {
        "gt": lambda a, b: a > b, "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b,
    }
    return compare[op](key(x), key(v))


def _is_link(node: Definition) -> bool:
    if "field" in node:
        return node["field"] in LINK_FIELDS
    kind = next(iter(node))
    return kind != "not" and bool(node[kind]) and all(_is_link(m) for m in node[kind])


def _on_link(node: Definition, link: dict[str, Any]) -> bool:
    if "field" in node:
        return _holds(node["op"], link[node["field"]], node["value"], node["field"])
    kind = next(iter(node))
    found = [_on_link(m, link) for m in node[kind]]
    return all(found) if kind == "all" else any(found)


def _matches(node: Definition, row: Row) -> bool:
    if _is_link(node):
        return any(_on_link(node, link) for link in row.links)
    if "field" in node:
        name, op, value = node["field"], node["op"], node["value"]
        if name == "mobile":  # many values: any of them; negative ops: none of them
            if op == "is_null":
                return (not row.mobiles) is value
            if op in ("ne", "not_in"):
                positive = "eq" if op == "ne" else "in"
                return not any(_holds(positive, m, value, name) for m in row.mobiles)
            return any(_holds(op, m, value, name) for m in row.mobiles)
        return _holds(op, getattr(row, name), value, name)
    kind = next(iter(node))
    if kind == "not":
        return not _matches(node["not"], row)
    members = node[kind]
    parts = [_matches(m, row) for m in members if not _is_link(m)]
    links = [m for m in members if _is_link(m)]
    if links:
        combine = all if kind == "all" else any
        parts.append(any(combine(_on_link(m, link) for m in links) for link in row.links))
    return all(parts) if kind == "all" else any(parts)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(definition=DEFINITIONS)
def test_segments_agree_with_a_python_reading(
    crm: CRM, population: list[Row], definition: Definition
) -> None:
    expected = [row.id for row in population if _matches(definition, row)]
    assert list(crm.segments.iter_ids(definition, batch_size=7)) == expected
    assert crm.segments.count(definition) == len(expected)


def test_oracle_knows_the_population(population: list[Row]) -> None:
    # guard against a vacuous property test: the data has what the rules are about
    assert any(r.persona is None for r in population)
    assert any(len(r.links) >= 2 for r in population)
    assert any(len(r.mobiles) == 2 for r in population)
    assert any(r.name and ("%" in r.name or "_" in r.name) for r in population)
