"""The unit of work makes its ``Session`` only when something asks for ``uow.session``.

The core's single operations write through ``uow.connection``; a plugin's ORM
writes through ``uow.session`` still join the operation's transaction: they are
flushed before the commit, commit with the operation, and an error anywhere rolls
back the Core and the ORM writes alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from recrm_core import CRM, Case, Customer, Interaction, PluginError, UnitOfWork, db, hookimpl
from recrm_core.tables import CaseRow, CustomerRow, DepartmentRow

Register = Callable[..., str]


@pytest.fixture
def sessions_made(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Session]]:
    """Every ``Session`` a unit of work makes while the test runs."""
    made: list[Session] = []

    class Counted(Session):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(db, "Session", Counted)
    yield made


def departments(crm: CRM) -> list[str]:
    return [d.code for d in crm.directory.departments()]


def customers(crm: CRM) -> int:
    with crm.unit_of_work(readonly=True) as uow:
        return uow.connection.execute(select(func.count()).select_from(CustomerRow)).scalar_one()


def test_single_operations_make_no_session(crm: CRM, sessions_made: list[Session]) -> None:
    crm.projects.ensure("P1", "Project one")
    crm.webhooks.add("https://example.com/hook", "*")
    sessions_made.clear()
    cid = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id
    crm.interactions.log(cid, {"kind": "call", "channel": "phone", "summary": "回访"})
    crm.customers.set_stage(cid, "visitor", "P1")
    crm.cases.open({"customer_id": cid, "category": "inquiry", "subject": "咨询"})
    assert sessions_made == []
    # The events went out all the same (written on the connection).
    assert {d.type for d in crm.webhooks.deliveries()} == {
        "customer.created", "interaction.logged", "stage.changed", "case.opened"}


def test_a_unit_of_work_nobody_uses_makes_no_session(
    crm: CRM, sessions_made: list[Session]
) -> None:
    with crm.unit_of_work() as uow:
        assert not uow.has_session
    with crm.unit_of_work() as uow:
        assert uow.session is uow.session
        assert uow.has_session
    assert len(sessions_made) == 1


def test_a_hooks_orm_write_commits_with_the_operation(
    crm: CRM, register_plugin: Register, sessions_made: list[Session]
) -> None:
    class Plugin:
        @hookimpl
        def recrm_customer_created(self, uow: UnitOfWork, customer: Customer) -> None:
            # Not flushed: the commit flushes it.
            uow.session.add(DepartmentRow(code=f"D{customer.id}", name="门店"))

        @hookimpl
        def recrm_interaction_logged(self, uow: UnitOfWork, interaction: Interaction) -> None:
            uow.session.add(DepartmentRow(code=f"I{interaction.id}", name="回访"))

    register_plugin(Plugin())
    cid = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id
    iid = crm.interactions.log(cid, {"kind": "call"}).id
    assert len(sessions_made) == 2  # one for each operation, made by the plugin
    assert departments(crm) == sorted([f"D{cid}", f"I{iid}"])
    assert customers(crm) == 1


def test_a_hook_error_rolls_back_core_and_orm_writes(
    crm: CRM, register_plugin: Register
) -> None:
    class Failing:
        @hookimpl
        def recrm_customer_created(self, uow: UnitOfWork, customer: Customer) -> None:
            uow.session.add(DepartmentRow(code="ORM", name="orm"))
            uow.session.flush()
            uow.connection.execute(insert(DepartmentRow), {"code": "CORE", "name": "core"})
            raise RuntimeError("the plugin failed")

    register_plugin(Failing())
    with pytest.raises(PluginError, match="the plugin failed"):
        crm.customers.add({"name": "王伟", "mobile": "13812345678"})
    assert customers(crm) == 0
    assert departments(crm) == []


def test_an_error_after_the_session_rolls_back_the_core_writes_before_it(crm: CRM) -> None:
    with pytest.raises(RuntimeError), crm.unit_of_work() as uow:
        uow.connection.execute(insert(DepartmentRow), {"code": "CORE", "name": "core"})
        uow.session.add(DepartmentRow(code="ORM", name="orm"))
        raise RuntimeError
    assert departments(crm) == []


def test_core_writes_before_the_session_commit_with_it(crm: CRM) -> None:
    with crm.unit_of_work() as uow:
        uow.connection.execute(insert(DepartmentRow), {"code": "CORE", "name": "core"})
        uow.session.add(DepartmentRow(code="ORM", name="orm"))
        # The session reads on the same transaction: it sees the Core row.
        assert uow.session.get(DepartmentRow, "CORE") is not None
    assert departments(crm) == ["CORE", "ORM"]


def test_session_rollback_undoes_the_core_writes_made_before_it(crm: CRM) -> None:
    # As when the session was bound to the engine: a view or a dry run rolls back.
    with crm.unit_of_work() as uow:
        uow.connection.execute(insert(DepartmentRow), {"code": "CORE", "name": "core"})
        uow.session.rollback()
    assert departments(crm) == []
    with crm.unit_of_work() as uow:
        session = uow.session  # made before any statement
        uow.connection.execute(insert(DepartmentRow), {"code": "CORE", "name": "core"})
        session.rollback()
    assert departments(crm) == []
    with crm.unit_of_work() as uow:
        uow.session.add(DepartmentRow(code="GONE", name="gone"))
        uow.session.rollback()
        uow.session.add(DepartmentRow(code="KEPT", name="kept"))
    assert departments(crm) == ["KEPT"]


def test_core_reads_see_a_hooks_unflushed_orm_change(
    crm: CRM, register_plugin: Register
) -> None:
    class Retitle:
        @hookimpl
        def recrm_case_opened(self, uow: UnitOfWork, case: Case) -> None:
            row = uow.session.get_one(CaseRow, case.id)
            row.subject = "改过的标题"  # left for the flush

    register_plugin(Retitle())
    cid = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id
    case = crm.cases.open({"customer_id": cid, "category": "inquiry", "subject": "咨询"})
    assert case.subject == "改过的标题"
    assert crm.cases.get(case.id).subject == "改过的标题"


def test_a_subscription_another_crm_made_receives_the_next_operations_events(
    crm_factory: Callable[..., CRM],
) -> None:
    # Two CRMs on one database, as two processes would be: the subscriptions are read
    # in every operation, so one committed by the other counts from the next one on.
    a, b = crm_factory(), crm_factory()
    first = b.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id
    a.webhooks.add("https://example.com/hook", "interaction.logged")
    b.interactions.log(first, {"kind": "call"})
    assert [d.type for d in a.webhooks.deliveries()] == ["interaction.logged"]
