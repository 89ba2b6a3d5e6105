"""The unit of work makes its ``Session`` only when something asks for ``uow.session``.

The core's single operations write through ``uow.connection``; a plugin's ORM
writes through ``uow.session`` still join the operation's transaction: they are
flushed before the commit, commit with the operation, and an error anywhere rolls
back the Core and the ORM writes alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, InvalidRequestError, OperationalError
from sqlalchemy.orm import Session

from recrm_core import CRM, Case, Customer, Interaction, PluginError, UnitOfWork, db, hookimpl
from recrm_core.tables import CaseRow, CustomerRow, DepartmentRow, InteractionRow

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


def test_a_routed_opening_makes_no_session(crm: CRM, sessions_made: list[Session]) -> None:
    """The round robin's turn moves on the driver's cursor: the ORM statements and the
    Session they made cost 1.2 ms of a 1.8 ms routed opening (bench/README.md)."""
    from recrm_core.config import RoutingRule

    crm.directory.add_department({"code": "ENG", "name": "工程部"})
    for staff in ("gc.a", "gc.b"):
        crm.directory.add_staff({"id": staff, "name": staff, "role": "service",
                                 "department": "ENG"})
    crm.config.routing = [RoutingRule(category="repair", department="ENG",
                                      assign="round_robin")]
    cid = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id
    first = crm.cases.open({"customer_id": cid, "category": "repair", "subject": "漏水"})
    sessions_made.clear()
    turns = [crm.cases.open({"customer_id": cid, "category": "repair", "subject": "漏水"})
             for _ in range(3)]
    assert sessions_made == []
    assert [c.assignee for c in (first, *turns)] == ["gc.a", "gc.b", "gc.a", "gc.b"]


def test_status_changes_make_no_session(crm: CRM, sessions_made: list[Session]) -> None:
    """A status change locks, updates and reads the case on the driver's cursor (the
    ORM's lock, flush and reads were two thirds of its cost, bench/README.md)."""
    cid = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id
    case = crm.cases.open({"customer_id": cid, "category": "repair", "subject": "漏水",
                           "project": "P1"})
    sessions_made.clear()
    started = crm.cases.start(case.id, note="上门")
    resolved = crm.cases.resolve(case.id)
    closed = crm.cases.close(case.id)
    reopened = crm.cases.reopen(case.id, note="又漏了")
    assert sessions_made == []
    assert [c.status for c in (started, resolved, closed, reopened)] == [
        "in_progress", "resolved", "closed", "reopened"]
    # What each returned is what a read gives.
    assert reopened == crm.cases.get(case.id)
    assert closed.closed_at is not None and reopened.closed_at is None
    assert reopened.project == "P1" and reopened.sla_due_at > closed.closed_at
    assert [(h.action, h.note) for h in reopened.history] == [
        ("open", None), ("start", "上门"), ("resolve", None), ("close", None),
        ("reopen", "又漏了")]


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


# -- the transaction on the driver (``uow.driver``) until something asks for SQLAlchemy's --


@pytest.fixture
def sqlalchemy_begins(crm: CRM) -> Iterator[list[object]]:
    """Every transaction SQLAlchemy's ``Connection`` begins (or takes over) while the
    test runs."""
    begun: list[object] = []

    def count(conn: object) -> None:
        begun.append(conn)

    event.listen(crm.engine, "begin", count)
    yield begun
    event.remove(crm.engine, "begin", count)


def interactions(crm: CRM) -> int:
    with crm.unit_of_work(readonly=True) as uow:
        return uow.connection.execute(
            select(func.count()).select_from(InteractionRow)).scalar_one()


def test_single_operations_run_their_transaction_on_the_driver(
    crm: CRM, sqlalchemy_begins: list[object]
) -> None:
    crm.projects.ensure("P1", "Project one")
    crm.directory.add_department({"code": "客服中心", "name": "客服中心"})
    crm.directory.add_staff({"id": "kf.wang", "name": "王", "role": "service",
                             "department": "客服中心"})
    sqlalchemy_begins.clear()
    cid = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id
    crm.interactions.log(cid, {"kind": "call", "channel": "phone", "summary": "回访"})
    crm.customers.set_stage(cid, "visitor", "P1")
    crm.cases.open({"customer_id": cid, "category": "inquiry", "subject": "咨询",
                    "department": "客服中心", "assignee": "kf.wang"})
    assert sqlalchemy_begins == []
    # ... and committed all the same.
    assert crm.customers.get(cid).projects[0].stage == "visitor"
    assert interactions(crm) == 1
    assert len(crm.cases.list(customer_id=cid)) == 1


def test_naming_a_project_or_an_owner_stays_on_the_driver(
    crm: CRM, sqlalchemy_begins: list[object]
) -> None:
    """The project's id and the staff check are read on the driver too: ``add`` and
    ``log`` naming a project, and ``add`` naming its consultant, begin no SQLAlchemy
    transaction (a project not yet known is created through the session, which does)."""
    crm.projects.ensure("P1", "Project one")
    crm.directory.add_department({"code": "销售部", "name": "销售部"})
    crm.directory.add_staff({"id": "xs.li", "name": "李", "role": "sales",
                             "department": "销售部"})
    sqlalchemy_begins.clear()
    cid = crm.customers.add({"name": "王伟", "mobile": "13812345678", "project": "P1",
                             "owner_staff": "xs.li"}).customer.id
    crm.interactions.log(cid, {"kind": "call", "channel": "phone", "project": "P1"})
    assert sqlalchemy_begins == []
    crm.interactions.log(cid, {"kind": "call", "channel": "phone", "project": "P2"})
    assert len(sqlalchemy_begins) == 1
    assert [p.project for p in crm.customers.get(cid).projects] == ["P1"]
    assert interactions(crm) == 2


def test_a_hook_error_rolls_back_the_drivers_transaction(
    crm: CRM, register_plugin: Register, sqlalchemy_begins: list[object]
) -> None:
    class Failing:
        @hookimpl
        def recrm_interaction_logged(self, uow: UnitOfWork, interaction: Interaction) -> None:
            raise RuntimeError("the plugin failed")

    cid = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id
    register_plugin(Failing())
    sqlalchemy_begins.clear()
    with pytest.raises(PluginError, match="the plugin failed"):
        crm.interactions.log(cid, {"kind": "call"})
    assert sqlalchemy_begins == []  # the rollback was the driver's
    assert interactions(crm) == 0
    # The pool connection went back clean: the next operation commits.
    crm.customers.add({"name": "李娜", "mobile": "13912345678"})
    assert customers(crm) == 2


def test_a_hooks_core_write_takes_the_transaction_over_and_commits_with_it(
    crm: CRM, register_plugin: Register
) -> None:
    seen: dict[str, object] = {}

    class CoreWriter:
        @hookimpl
        def recrm_interaction_logged(self, uow: UnitOfWork, interaction: Interaction) -> None:
            conn = uow.connection
            # What a plugin sees is what it saw before: the operation's transaction,
            # begun, and no second one to begin.
            seen["in_transaction"] = conn.in_transaction()
            with pytest.raises(InvalidRequestError):
                conn.begin()
            conn.execute(insert(DepartmentRow), {"code": f"I{interaction.id}", "name": "回访"})

    register_plugin(CoreWriter())
    cid = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id
    iid = crm.interactions.log(cid, {"kind": "call"}).id
    assert seen == {"in_transaction": True}
    assert departments(crm) == [f"I{iid}"]
    assert interactions(crm) == 1


def test_a_hooks_core_write_rolls_back_with_the_drivers_writes(
    crm: CRM, register_plugin: Register
) -> None:
    class CoreThenFail:
        @hookimpl
        def recrm_interaction_logged(self, uow: UnitOfWork, interaction: Interaction) -> None:
            uow.connection.execute(insert(DepartmentRow), {"code": "CORE", "name": "core"})
            raise RuntimeError("the plugin failed")

    cid = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id
    register_plugin(CoreThenFail())
    with pytest.raises(PluginError):
        crm.interactions.log(cid, {"kind": "call"})
    assert interactions(crm) == 0
    assert departments(crm) == []


def test_a_session_asked_for_mid_operation_holds_the_drivers_writes(crm: CRM) -> None:
    cid = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id
    # Written on the driver, then a plugin's session: its rollback undoes them.
    with crm.unit_of_work() as uow:
        crm.interactions.log_many_in(uow, [{"customer_id": cid, "kind": "call"}])
        uow.session.rollback()
    assert interactions(crm) == 0
    # Its commit (the unit of work's) keeps them, with the session's own rows.
    with crm.unit_of_work() as uow:
        crm.interactions.log_many_in(uow, [{"customer_id": cid, "kind": "call"}])
        uow.session.add(DepartmentRow(code="ORM", name="orm"))
        # The session reads in the same transaction: it sees the driver's write.
        assert uow.session.scalar(select(func.count()).select_from(InteractionRow)) == 1
    assert interactions(crm) == 1
    assert departments(crm) == ["ORM"]


def on_driver(uow: UnitOfWork, sql: str) -> None:
    """``sql`` on the driver's connection, in the unit of work's transaction."""
    dbapi_connection = uow.driver.connection.dbapi_connection
    assert dbapi_connection is not None
    dbapi_connection.execute(sql)


def test_an_error_at_commit_comes_as_through_sqlalchemy(
    crm: CRM, recrm_backend: str
) -> None:
    """An error the database raises only at COMMIT (a deferred check) comes from the
    driver's commit as SQLAlchemy's commit gave it: the same class, the same driver
    error; nothing is kept, and the pool connection serves the next operation."""
    cid = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id
    if recrm_backend == "postgresql":
        # A check deferred to the commit, failing as a serialization failure would.
        with crm.engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE FUNCTION ops_refuse() RETURNS trigger LANGUAGE plpgsql AS $$"
                " BEGIN RAISE EXCEPTION 'refused at commit'"
                " USING ERRCODE = 'serialization_failure'; END $$")
            conn.exec_driver_sql(
                "CREATE CONSTRAINT TRIGGER ops_refuse AFTER INSERT ON interactions"
                " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ops_refuse()")

    def defer(uow: UnitOfWork) -> None:
        if recrm_backend == "sqlite":
            # Foreign keys checked at COMMIT, and a row breaking one.
            on_driver(uow, "PRAGMA defer_foreign_keys=ON")

    def through_driver() -> None:
        with crm.unit_of_work() as uow:
            defer(uow)
            crm.interactions.log_many_in(uow, [{"customer_id": cid, "kind": "call"}])
            if recrm_backend == "sqlite":
                on_driver(uow, "UPDATE interactions SET customer_id = 999999")

    def through_sqlalchemy() -> None:
        with crm.unit_of_work() as uow:
            uow.connection.execute(select(1))  # SQLAlchemy's transaction from the start
            defer(uow)
            crm.interactions.log_many_in(uow, [{"customer_id": cid, "kind": "call"}])
            if recrm_backend == "sqlite":
                uow.connection.exec_driver_sql("UPDATE interactions SET customer_id = 999999")

    errors = []
    for write in (through_driver, through_sqlalchemy):
        with pytest.raises(DBAPIError) as caught:
            write()
        errors.append((type(caught.value), type(caught.value.orig)))
        assert interactions(crm) == 0
    assert errors[0] == errors[1]
    assert errors[0][0] is (IntegrityError if recrm_backend == "sqlite" else OperationalError)
    if recrm_backend == "postgresql":
        with crm.engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER ops_refuse ON interactions")
    crm.interactions.log(cid, {"kind": "call"})
    assert interactions(crm) == 1


def test_a_connection_lost_before_the_commit_comes_as_through_sqlalchemy(
    crm: CRM, recrm_backend: str
) -> None:
    """The server ends the session between the last statement and the COMMIT: the
    driver's commit fails as SQLAlchemy's did (``OperationalError``, the connection
    invalidated, so the pool never hands it out again), nothing is kept, and the next
    operation runs on a new connection."""
    if recrm_backend != "postgresql":
        pytest.skip("a server ending a session is PostgreSQL's")
    cid = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id

    def kill(uow: UnitOfWork) -> None:
        dbapi_connection: Any = uow.driver.connection.dbapi_connection
        pid = dbapi_connection.info.backend_pid
        with crm.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            for _ in range(200):  # the backend exits asynchronously
                if not other.execute(text("SELECT 1 FROM pg_stat_activity WHERE pid = :pid"),
                                     {"pid": pid}).first():
                    break
                time.sleep(0.01)

    def through_driver() -> None:
        with crm.unit_of_work() as uow:
            crm.interactions.log_many_in(uow, [{"customer_id": cid, "kind": "call"}])
            kill(uow)

    def through_sqlalchemy() -> None:
        with crm.unit_of_work() as uow:
            uow.connection.execute(select(1))
            crm.interactions.log_many_in(uow, [{"customer_id": cid, "kind": "call"}])
            kill(uow)

    errors = []
    for write in (through_driver, through_sqlalchemy):
        with pytest.raises(DBAPIError) as caught:
            write()
        errors.append((type(caught.value), caught.value.connection_invalidated))
        assert interactions(crm) == 0
    assert errors == [(OperationalError, True)] * 2
    crm.interactions.log(cid, {"kind": "call"})
    assert interactions(crm) == 1
