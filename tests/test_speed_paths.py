"""The fast paths of stage 4 give exactly what the slow paths gave.

- ``load_customers`` builds models from Core rows without validating them again;
  it is compared with the former construction (ORM rows, validated models);
- the ``recrm_customers_imported`` hook's ``load`` gives the models the reference
  loader reads, inside the hook;
- ``find`` reads on a bare connection through ``RawSelect``;
- ``set_stage`` recomputes the overall stage in one statement;
- read-only units of work take no write lock on SQLite.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import column, delete, event, select, table, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from recrm_core import CRM, Customer, ImportedCustomer, hookimpl
from recrm_core.customers import load_customer, load_customers
from recrm_core.db import utcnow
from recrm_core.errors import NotFound, Refused
from recrm_core.idcards import decrypt_on
from recrm_core.identity import id_card_check_character
from recrm_core.models import ProjectLink
from recrm_core.rawsql import RawSelect
from recrm_core.tables import (
    CustomerProjectRow,
    CustomerRow,
    IdentityRow,
    InteractionRow,
    ProjectRow,
)
from recrm_core.values import STAGE_RANK, STAGES

DB_SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def card(body: str) -> str:
    return body + id_card_check_character(body)


def wipe(crm: CRM) -> None:
    """Empty the core tables (children first)."""
    with crm.engine.begin() as conn:
        for table in (InteractionRow, CustomerProjectRow, IdentityRow, CustomerRow,
                      ProjectRow):
            conn.execute(delete(table))


def reference_load(session: Session, ids: Iterable[int]) -> dict[int, Customer]:
    """``load_customers`` as it was before stage 4: ORM rows and validated models."""
    id_list = list(dict.fromkeys(ids))
    rows = session.scalars(select(CustomerRow).where(CustomerRow.id.in_(id_list))).all()
    mobiles: dict[int, list[str]] = {}
    cards: dict[int, str] = {}
    unionids: dict[int, list[str]] = {}
    for cid, kind, display in session.execute(
        select(IdentityRow.customer_id, IdentityRow.kind, IdentityRow.display)
        .where(IdentityRow.customer_id.in_(id_list))
        .order_by(IdentityRow.id)
    ):
        if kind == "mobile":
            mobiles.setdefault(cid, []).append(display)
        elif kind == "wechat":
            unionids.setdefault(cid, []).append(display)
        else:
            # stored encrypted (recrm_core.idcards): decrypted as load_customers does
            cards[cid] = decrypt_on(session.connection(), display)
    links: dict[int, list[ProjectLink]] = {}
    for link, code, pname in session.execute(
        select(CustomerProjectRow, ProjectRow.code, ProjectRow.name)
        .join(ProjectRow, ProjectRow.id == CustomerProjectRow.project_id)
        .where(CustomerProjectRow.customer_id.in_(id_list))
        .order_by(CustomerProjectRow.id)
    ):
        links.setdefault(link.customer_id, []).append(ProjectLink(
            project=code, project_name=pname, stage=link.stage, owner_staff=link.owner_staff,
            source=link.source, first_seen_at=link.first_seen_at,
        ))
    return {
        r.id: Customer(
            id=r.id, name=r.name, gender=r.gender, birth_date=r.birth_date,
            persona=r.persona, budget=r.budget, email=r.email,
            mobiles=mobiles.get(r.id, []), id_card=cards.get(r.id),
            wechat_unionids=unionids.get(r.id, []), stage=r.stage,
            projects=links.get(r.id, []), source_system=r.source_system,
            external_id=r.external_id, merged_into=r.merged_into,
            created_at=r.created_at, updated_at=r.updated_at,
        )
        for r in rows
    }


def assert_same(fast: Customer, slow: Customer) -> None:
    """Equal, and equal in every way a caller could tell: types, fields set, JSON."""
    assert fast == slow
    assert fast.model_fields_set == slow.model_fields_set
    assert fast.model_dump_json() == slow.model_dump_json()
    for name in Customer.model_fields:
        assert type(getattr(fast, name)) is type(getattr(slow, name)), name
    for mine, theirs in zip(fast.projects, slow.projects, strict=True):
        assert mine.model_fields_set == theirs.model_fields_set
        assert type(mine.first_seen_at) is type(theirs.first_seen_at)
        assert mine.first_seen_at.tzinfo == theirs.first_seen_at.tzinfo


MOBILES = [f"1381234{i:04d}" for i in range(6)]
CARDS = [card("11010519800101001"), card("11010519491231002"), card("44030419900315123")]
ROW = st.fixed_dictionaries(
    {"mobile": st.sampled_from([*MOBILES, "", "123"])},
    optional={
        "name": st.sampled_from(["王伟", "李娜", "", "  张三 "]),
        "id_card": st.sampled_from(CARDS),
        "email": st.sampled_from(["a@b.cn", "X@QQ.com", ""]),
        "persona": st.sampled_from(["刚需", "investor", ""]),
        "budget": st.sampled_from(["200万", "1,200,000", ""]),
        "birth_date": st.sampled_from(["1980-01-01", "1990/3/15"]),
        "project": st.sampled_from(["XL1", "XL2", "新城"]),
        "source": st.sampled_from(["web", "call", ""]),
        "owner_staff": st.sampled_from(["s1", "s2", ""]),
        "external_id": st.sampled_from(["E1", "E2"]),
        "wechat_unionid": st.sampled_from(["oAbCdEfGhIjKlMnOpQrStUvWx_12", ""]),
    },
)


class CompareImported:
    """Checks, inside the hook, that the models it gets are what loading gives."""

    def __init__(self) -> None:
        self.created = 0
        self.merged = 0

    @hookimpl
    def recrm_customers_imported(
        self, uow: Any, records: list[ImportedCustomer],
        load: Callable[[list[int]], dict[int, Customer]],
    ) -> None:
        ids = [r.customer_id for r in records]
        assert len(set(ids)) == len(ids)
        slow = reference_load(uow.session, ids)
        given = load(ids)
        for cid in ids:
            assert_same(given[cid], slow[cid])
        self.created += sum(r.created for r in records)
        self.merged += sum(not r.created for r in records)


@DB_SETTINGS
@given(batches=st.lists(st.lists(ROW, min_size=1, max_size=8), min_size=1, max_size=3))
def test_imported_hook_models_equal_loaded_models(
    crm_factory: Callable[..., CRM], batches: list[list[dict[str, str]]]
) -> None:
    checker = CompareImported()
    crm = crm_factory(plugins=[checker], settings={"import_batch_size": 3})
    wipe(crm)  # every example runs on the same database
    total_created = 0
    for rows in batches:
        result = crm.importer.import_rows(rows)
        total_created += result.created
    assert checker.created == total_created
    crm.close()


def rich_customers(crm: CRM) -> list[int]:
    """Customers with everything a model can hold, including a merged one."""
    a = crm.customers.add({
        "name": "王伟", "mobile": "13812345678", "id_card": card("11010519800101001"),
        "email": "w@x.cn", "persona": "投资", "budget": "1.5万", "project": "XL1",
        "source": "web", "owner_staff": "s1", "external_id": "E-1",
        "wechat_unionid": "oAbCdEfGhIjKlMnOpQrStUvWx_12",
    }).customer
    crm.customers.update(a.id, {"add_mobiles": ["13912345678"],
                                "add_wechat_unionids": ["o6_bmasdasdsad6_2sgVt7hMZOPf"]})
    crm.customers.set_stage(a.id, "buyer", "XL2", unit="3-1201", amount=10)
    b = crm.customers.add({"mobile": "13712345678", "gender": "女"}).customer
    c = crm.customers.add({"mobile": "15012345678", "project": "XL1"}).customer
    crm.customers.merge(c.id, b.id)
    return [a.id, b.id, c.id]


def test_load_customers_equals_validated_orm_build(crm: CRM) -> None:
    ids = rich_customers(crm)
    with crm.unit_of_work() as uow:
        slow = reference_load(uow.session, ids)
        for batch in (ids, ids[:1], ids[1:2], list(reversed(ids))):
            fast = load_customers(uow.session, batch)
            assert fast.keys() == {i for i in batch}
            for cid, model in fast.items():
                assert_same(model, slow[cid])
        # a merged-away id loads as its survivor, an unknown one is NotFound
        assert_same(load_customer(uow.session, ids[1]), slow[ids[2]])
        with pytest.raises(NotFound):
            load_customer(uow.session, 10_000)


def test_load_customers_sees_pending_orm_changes(crm: CRM) -> None:
    """The Core reads flush first, as the ORM's autoflush did."""
    cid = crm.customers.add({"mobile": "13812345678"}).customer.id
    with crm.unit_of_work() as uow:
        row = uow.session.get_one(CustomerRow, cid)
        row.name = "未刷新"
        assert load_customers(uow.session, [cid])[cid].name == "未刷新"
        assert load_customer(uow.session, cid).name == "未刷新"


def test_find_equals_get(crm: CRM) -> None:
    ids = rich_customers(crm)
    by_mobile = crm.customers.find(mobile="139 1234 5678")
    assert [c.id for c in by_mobile] == [ids[0]]
    assert_same(by_mobile[0], crm.customers.get(ids[0]))
    by_card = crm.customers.find(id_card=card("11010519800101001").lower())
    assert_same(by_card[0], by_mobile[0])
    # the merged duplicate's mobile now belongs to the survivor
    assert [c.id for c in crm.customers.find(mobile="13712345678")] == [ids[2]]
    assert crm.customers.find(mobile="13600000000") == []
    with crm.unit_of_work() as uow:
        slow = reference_load(uow.session, [ids[2]])[ids[2]]
    assert_same(crm.customers.find(mobile="15012345678")[0], slow)



def test_find_on_a_holder_merged_away_or_erased(crm: CRM) -> None:
    """The key's holder marked merged away while still holding it (merges move the
    identities, so only a safety net catches this) is found as its survivor; an
    erased holder is NotFound, as ``get`` says."""
    holder = crm.customers.add({"mobile": "13812345678"}).customer.id
    survivor = crm.customers.add({"mobile": "13912345678"}).customer.id
    with crm.engine.begin() as conn:
        conn.execute(update(CustomerRow).where(CustomerRow.id == holder)
                     .values(merged_into=survivor))
    assert_same(crm.customers.find(mobile="13812345678")[0], crm.customers.get(survivor))
    with crm.engine.begin() as conn:
        conn.execute(update(CustomerRow).where(CustomerRow.id == holder)
                     .values(merged_into=None, erased_at=utcnow()))
    with pytest.raises(NotFound, match="was erased"):
        crm.customers.find(mobile="13812345678")
    with pytest.raises(NotFound, match="was erased"):
        crm.customers.get(holder)


def test_pooled_raw_select_raises_sqlalchemy_errors(crm: CRM) -> None:
    """A driver error on the pool connection comes as SQLAlchemy's, as through a
    ``Connection`` (the HTTP API answers 503 to an ``OperationalError``)."""
    missing = RawSelect(select(column("x")).select_from(table("no_such_table")))
    with pytest.raises(DBAPIError):
        missing.pooled(crm.engine, {})
    assert crm.customers.find(mobile="13812345678") == []  # the connection went back


STAGE_STEP = st.tuples(st.sampled_from(["A", "B", "C"]), st.sampled_from(STAGES), st.booleans())


@DB_SETTINGS
@given(steps=st.lists(STAGE_STEP, min_size=1, max_size=10))
def test_set_stage_matches_a_model_of_the_rules(
    crm_factory: Callable[..., CRM], steps: list[tuple[str, str, bool]]
) -> None:
    crm = crm_factory()
    wipe(crm)  # every example runs on the same database
    cid = crm.customers.add({"mobile": "13812345678", "project": "A"}).customer.id
    expected: dict[str, str] = {"A": "prospect"}
    for project, stage, force in steps:
        before = crm.customers.get(cid)
        old = expected.get(project)
        if old is not None and STAGE_RANK[stage] < STAGE_RANK[old] and not force:
            with pytest.raises(Refused):
                crm.customers.set_stage(cid, stage, project, force=force)
            continue
        got = crm.customers.set_stage(cid, stage, project, force=force)
        expected[project] = stage
        assert {p.project: p.stage for p in got.projects} == expected
        assert got.stage == max(expected.values(), key=STAGE_RANK.__getitem__)
        if old == stage:
            assert got.updated_at == before.updated_at
        else:
            assert got.updated_at > before.updated_at
        assert_same(got, crm.customers.get(cid))
    crm.close()


def test_set_stage_in_shares_the_callers_unit_of_work(crm: CRM) -> None:
    cid = crm.customers.add({"mobile": "13812345678"}).customer.id
    with pytest.raises(RuntimeError), crm.unit_of_work() as uow:
        moved = crm.customers.set_stage_in(uow, cid, "subscriber", "A", unit="1-101")
        assert moved.stage == "subscriber"
        raise RuntimeError("roll back")
    assert crm.customers.get(cid).stage == "prospect"
    assert crm.interactions.list(cid) == []


def test_stage_interaction_equals_the_stored_one(crm: CRM) -> None:
    cid = crm.customers.add({"mobile": "13812345678"}).customer.id
    seen: list[Any] = []

    class Recorder:
        @hookimpl
        def recrm_interaction_logged(self, uow: Any, interaction: Any) -> None:
            seen.append(interaction)

    crm.pm.register(Recorder(), name="recorder")
    crm.customers.set_stage(cid, "owner", "A", unit="9-9")
    crm.interactions.log(cid, {"kind": "call", "project": "B", "data": {"k": [1]}})
    stored = {i.id: i for i in crm.interactions.list(cid)}
    assert len(seen) == 2
    for logged in seen:
        assert logged == stored[logged.id]


def begins(crm: CRM) -> tuple[list[str], Callable[[], None]]:
    """The BEGINs SQLite runs, as its driver traces them (the unit of work begins on
    the driver's connection, out of SQLAlchemy's cursor events)."""
    statements: list[str] = []
    traced: list[Any] = []

    def record(statement: str) -> None:
        if statement.upper().startswith("BEGIN"):
            statements.append(statement.upper())

    def trace(dbapi_conn: Any, *_args: Any) -> None:
        dbapi_conn.set_trace_callback(record)
        traced.append(dbapi_conn)

    def stop() -> None:
        event.remove(crm.engine, "checkout", trace)
        for dbapi_conn in traced:
            dbapi_conn.set_trace_callback(None)

    event.listen(crm.engine, "checkout", trace)
    return statements, stop


def test_reads_begin_without_the_write_lock(crm: CRM, recrm_backend: str) -> None:
    if recrm_backend != "sqlite":
        pytest.skip("BEGIN IMMEDIATE is SQLite's; PostgreSQL begins implicitly")
    cid = crm.customers.add({"mobile": "13812345678", "project": "A"}).customer.id
    statements, stop = begins(crm)
    try:
        crm.customers.get(cid)
        crm.customers.find(email="nobody@x.cn")
        crm.customers.count()
        crm.customers.view(cid)
        crm.interactions.list(cid)
        crm.consent.current(cid)
        crm.cases.list()
        crm.segments.count({"all": []})
        assert statements and set(statements) == {"BEGIN"}
        statements.clear()
        crm.customers.set_stage(cid, "visitor", "A")
        assert statements == ["BEGIN IMMEDIATE"]
    finally:
        stop()


def test_reads_do_not_wait_for_a_writer(
    crm_factory: Callable[..., CRM], recrm_backend: str
) -> None:
    if recrm_backend != "sqlite":
        pytest.skip("PostgreSQL readers never wait for writers")
    writer, reader = crm_factory(), crm_factory()
    cid = writer.customers.add({"mobile": "13812345678"}).customer.id
    done = threading.Event()
    results: list[Any] = []

    def read() -> None:
        results.append(reader.customers.get(cid).id)
        results.append(reader.customers.count())
        results.append([c.id for c in reader.customers.find(mobile="13812345678")])
        done.set()

    with writer.unit_of_work() as uow:  # holds SQLite's write lock until the end
        uow.session.add(CustomerRow(name="未提交", stage="prospect"))
        uow.session.flush()
        thread = threading.Thread(target=read)
        thread.start()
        # a write-locking read would wait for the busy timeout (30 s)
        assert done.wait(timeout=10)
    thread.join()
    assert results == [cid, 1, [cid]]
