"""The single operations build what they return and what their hooks see from the
values they wrote (issue 21): those models must equal, field by field, the ones read
back from the database, and a hook's own change to the row must still show in what
the operation returns."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from recrm_core import CRM, Actor, Case, hookimpl
from recrm_core.cases import _stored_model
from recrm_core.db import UnitOfWork
from recrm_core.rawsql import RawWrite
from recrm_core.tables import CaseHistoryRow, CaseRow, IdentityRow, InteractionRow

ROUTING = [{"category": "repair", "department": "ENG"}]
CST = ZoneInfo("Asia/Shanghai")


class Opened:
    """Records the case ``recrm_case_opened`` saw and the case as stored at that
    moment (the model the hook got before: the row read back in the same unit of
    work)."""

    def __init__(self) -> None:
        self.seen: list[tuple[Case, Case]] = []

    @hookimpl
    def recrm_case_opened(self, uow: UnitOfWork, case: Case) -> None:
        stored = _stored_model(uow.session, case.id, dt.datetime.now(dt.UTC),
                               uow.crm.cases.level_names())
        self.seen.append((case, stored))


def _staff(crm: CRM) -> None:
    crm.directory.add_department({"code": "ENG", "name": "工程部"})
    crm.directory.add_staff({"id": "e1", "name": "e1", "role": "service",
                             "department": "ENG"})


@pytest.mark.recrm_settings(routing=ROUTING)
@pytest.mark.parametrize("fields", [
    {},  # routed: department and assignee from the rule, a route history row
    {"department": "ENG", "assignee": "e1", "project": "P1", "channel": "wechat",
     "description": "楼上漏水", "priority": "urgent"},
    {"category": "praise"},  # no rule matches: left unassigned
])
def test_open_models_equal_the_stored_case(crm: CRM, fields: dict[str, Any]) -> None:
    _staff(crm)
    cid = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id
    recorder = Opened()
    crm.pm.register(recorder, name="recorder")
    actor = Actor(staff_id="e1", role="service")
    data = {"customer_id": cid, "category": "repair", "subject": "漏水"} | fields
    for opened_at in (None, dt.datetime(2024, 5, 6, 9, 30, 15, 123456, tzinfo=CST)):
        case = crm.cases.open(data, actor=actor, opened_at=opened_at)
        seen, stored_then = recorder.seen.pop()
        assert seen == stored_then
        assert seen.model_dump() == stored_then.model_dump()
        got = crm.cases.get(case.id)
        for name in Case.model_fields:
            if name != "overdue":
                assert getattr(case, name) == getattr(got, name), name
        assert case.history == got.history and len(got.history) in (1, 2)


def test_open_returns_what_a_hook_changed(crm: CRM) -> None:
    cid = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id

    class Changer:
        @hookimpl
        def recrm_case_opened(self, uow: UnitOfWork, case: Case) -> None:
            # one change through Core, one through the ORM
            uow.session.connection().execute(
                update(CaseRow).where(CaseRow.id == case.id).values(subject="改过"))
            uow.session.add(CaseHistoryRow(case_id=case.id, action="note", to_value="x",
                                           at=dt.datetime.now(dt.UTC)))

    crm.pm.register(Changer(), name="changer")
    case = crm.cases.open({"customer_id": cid, "category": "inquiry", "subject": "咨询"})
    assert case.subject == "改过"
    assert [h.action for h in case.history] == ["open", "note"]
    assert case == crm.cases.get(case.id).model_copy(update={"overdue": case.overdue})


def test_raw_write_stores_what_sqlalchemy_stores(crm: CRM) -> None:
    cid = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id
    table = cast(Table, InteractionRow.__table__)
    at = dt.datetime(2024, 5, 6, 9, 30, 15, 123456, tzinfo=CST)
    values = {"customer_id": cid, "kind": "call", "channel": "phone", "project_id": None,
              "staff": None, "occurred_at": at, "summary": "回访",
              "data": {"k": [1, "二"], "n": None}, "created_at": at, "minutes": 3}
    raw = RawWrite(insert(table).returning(table.c.id))
    with crm.unit_of_work() as uow:
        conn = uow.session.connection()
        fast = raw.run(conn, values)
        slow = conn.execute(insert(table).returning(table.c.id), values).scalar_one()
        rows = {r.id: r for r in conn.execute(select(table).where(table.c.id.in_([fast, slow])))}
    assert {k: v for k, v in rows[fast]._mapping.items() if k != "id"} == \
        {k: v for k, v in rows[slow]._mapping.items() if k != "id"}
    assert rows[fast].occurred_at == at and rows[fast].data == values["data"]


def test_raw_write_raises_sqlalchemy_errors_and_computes_defaults(crm: CRM) -> None:
    cid = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id
    table = cast(Table, IdentityRow.__table__)
    raw = RawWrite(insert(table))
    with pytest.raises(IntegrityError), crm.unit_of_work() as uow:
        raw.run(uow.session.connection(), {
            "customer_id": cid, "kind": "mobile", "value": "+8613812345678",
            "display": "+8613812345678", "created_at": dt.datetime.now(dt.UTC)})
    # created_at left out: its Python default is computed, as SQLAlchemy's execution does
    with crm.unit_of_work() as uow:
        conn = uow.session.connection()
        raw.run(conn, {"customer_id": cid, "kind": "mobile", "value": "+8613900000000",
                       "display": "+8613900000000"})
        created = conn.execute(select(table.c.created_at).where(
            table.c.value == "+8613900000000")).scalar_one()
    assert created is not None
