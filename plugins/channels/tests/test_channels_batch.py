"""The batch hooks (``recrm_interactions_logged``, ``recrm_stages_changed``): visits and
stage moves delivered as one batch judge, accrue and claw back exactly as the same
changes made one at a time (several customers, one unregistered; one customer with
two visits, one with a subscription and a contract, one with a deal cancelled, one
with a visit and a subscription, in one batch); and the service's own batches,
``Channels.visits`` and ``Channels.register_many``, against the same calls one by one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from channels_testkit import setup_agencies
from recrm_channels import AgentRegistrationIn, Channels, RegistrationRefused, VisitIn
from recrm_channels.commission import Commissions
from recrm_channels.tables import CommissionEntryRow, RegistrationRow, TransitionRow
from sqlalchemy import event, select

import recrm_core.rawsql as recrm_rawsql
from recrm_core import CRM, InvalidInput, NotFound, UnitOfWork, utcnow

pytestmark = pytest.mark.recrm_plugins("channels")

START = utcnow().replace(microsecond=0) - dt.timedelta(days=20)
#: everything the scenario dates happens before this; later times come from the clock
CLOCK = START + dt.timedelta(days=10)


def _at(days: float) -> dt.datetime:
    return START + dt.timedelta(days=days)


@contextmanager
def _operation(crm: CRM, batched: bool) -> Iterator[UnitOfWork | None]:
    """One unit of work delivering its changes as one batch, or none (each change its
    own operation, a batch of one)."""
    if not batched:
        yield None
        return
    with crm.unit_of_work() as uow, crm.hooks.batched(uow):
        yield uow


def _scenario(crm: CRM, channels: Channels, project: str, prefix: str,
              batched: bool) -> list[Any]:
    crm.projects.ensure(project, project)
    for agency in ("A", "B"):
        Commissions(crm).set_terms(agency, project, percent="1.5", visit_reward="300",
                                   subscription_reward="2000")
    cids = [crm.customers.add({"mobile": f"{prefix}{n:04d}"}).customer.id for n in range(5)]
    for n, agent in ((0, "a1"), (1, "b1"), (3, "a2"), (4, "b1")):  # customer 2: no registration
        channels.register(agent, project, f"{prefix}{n:04d}", now=_at(n / 24))

    def visit(uow: UnitOfWork | None, n: int, day: float) -> None:
        agent: dict[str, Any] = {"agent": "a1"} if n == 0 else {}
        if uow is None:
            crm.interactions.log(cids[n], {"kind": "visit", "project": project,
                                           "occurred_at": _at(day), "data": agent})
        else:
            crm.interactions.log_in(uow, cids[n], kind="visit", project=project,
                                    occurred_at=_at(day), data=agent)

    def move(uow: UnitOfWork | None, n: int, stage: str, day: float, **kw: Any) -> None:
        if uow is None:
            crm.customers.set_stage(cids[n], stage, project, occurred_at=_at(day), **kw)
        else:
            crm.customers.set_stage_in(uow, cids[n], stage, project, occurred_at=_at(day),
                                       **kw)

    with _operation(crm, batched) as uow:
        for n, day in ((0, 1), (1, 1.5), (2, 1), (3, 2), (0, 2.5), (4, 1)):
            visit(uow, n, day)
        # a visit and a subscription in one batch: the visit judged without it
        move(uow, 4, "subscriber", 2, unit="1-105", amount=50_000)
    with _operation(crm, batched) as uow:
        move(uow, 0, "subscriber", 3, unit="1-101", amount=50_000)
        move(uow, 0, "buyer", 4, unit="1-101", amount=2_000_000)
        move(uow, 1, "buyer", 4, unit="1-102", amount=3_000_000)
        move(uow, 2, "buyer", 4, unit="1-103", amount=1_000_000)
        move(uow, 3, "buyer", 4, unit="1-104", amount=2_500_000)
        move(uow, 3, "visitor", 5, force=True)
    return _outcome(crm, project)


def _outcome(crm: CRM, project: str) -> list[Any]:
    """Every row the plugin wrote at ``project``, registrations numbered in order; a
    time taken from the clock (a state entered again "now") reads "now"."""
    with crm.unit_of_work(readonly=True) as uow:
        regs = uow.session.scalars(select(RegistrationRow).where(
            RegistrationRow.project == project).order_by(RegistrationRow.id)).all()
        number = {r.id: n for n, r in enumerate(regs)}
        out: list[Any] = [(number[r.id], r.agency, r.state, r.reason, r.explanation,
                           r.confirmed_at, r.protected_until, r.converted_at, r.ended_at)
                          for r in regs]
        out += [(number[t.registration_id], t.state, t.reason, t.rule_version,
                 "now" if t.at > CLOCK else t.at)
                for t in uow.session.scalars(select(TransitionRow).where(
                    TransitionRow.registration_id.in_(number)).order_by(TransitionRow.id))]
        entries = uow.session.scalars(select(CommissionEntryRow).where(
            CommissionEntryRow.project == project).order_by(CommissionEntryRow.id)).all()
        entry = {e.id: n for n, e in enumerate(entries)}
        out += [(number[e.registration_id], e.kind, e.amount, e.unit, e.deal_amount, e.note,
                 entry.get(e.reverses_id) if e.reverses_id else None, e.at)
                for e in entries]
    return out


def test_hook_recrm_stages_changed(crm: CRM) -> None:
    # Both batch hooks: a batch judges and accrues as the same changes one by one.
    channels = setup_agencies(crm)
    alone = _scenario(crm, channels, "XL2", "1381234", batched=False)
    batch = _scenario(crm, channels, "XL3", "1391234", batched=True)
    assert batch == alone
    kinds = [row[1] for row in alone if len(row) == 8]
    # the scenario reaches every branch: visit rewards, a subscription, deals, a clawback
    assert sorted(set(kinds)) == ["clawback", "deal", "subscription", "visit"]


def test_a_batch_without_registrations_asks_once(crm: CRM) -> None:
    # Customers no agency brought cost one query per batch, whatever its size.
    setup_agencies(crm)
    cids = [crm.customers.add({"mobile": f"1371234{n:04d}"}).customer.id for n in range(30)]
    statements: list[str] = []
    with crm.unit_of_work() as uow, crm.hooks.batched(uow):
        for cid in cids:
            crm.interactions.log_in(uow, cid, kind="visit", project="XL2")
        # from here on: what the batch hooks run when the block ends
        event.listen(uow.session.connection(), "before_cursor_execute",
                     lambda *args: statements.append(args[2]))
    assert sum("channels_registrations" in s for s in statements) == 1


def _visits(crm: CRM, channels: Channels, project: str, prefix: str,
            batched: bool) -> list[Any]:
    """Visits of known customers (one with no name yet, one twice), of a customer no
    agency brought and of a mobile the CRM never saw, logged one by one or as one
    ``visits`` batch: their results, the plugin's rows, and each visitor's name and
    link (source) at the project."""
    crm.projects.ensure(project, project)
    mobiles = [f"{prefix}{n:04d}" for n in range(5)]
    for n in range(4):
        crm.customers.add({"mobile": mobiles[n], "name": "Old" if n == 1 else None})
    for n, agent in ((0, "a1"), (1, "b1"), (3, "a2"), (4, "b1")):  # 2: no registration
        channels.register(agent, project, mobiles[n], now=_at(n / 24))
    visits = [VisitIn(mobile=mobiles[0], agent="a1", at=_at(1)),
              VisitIn(mobile=mobiles[1], name="New", at=_at(1.5)),
              VisitIn(mobile=mobiles[2], name="Walk-in", at=_at(1)),
              VisitIn(mobile=mobiles[4], name="Fresh", at=_at(2)),
              VisitIn(mobile=mobiles[0], at=_at(2.5)),
              VisitIn(mobile=mobiles[3], agent="a2", at=_at(2))]
    if batched:
        found = channels.visits(project, visits)
    else:
        found = [channels.visit(project, v.mobile, v.agent, v.name, at=v.at) for v in visits]
    out: list[Any] = [r and r.model_dump(exclude={"id", "project", "mobile", "customer_id",
                                                   "time_left_seconds"}) for r in found]
    for mobile in mobiles:
        [customer] = crm.customers.find(mobile=mobile)
        out.append((customer.name, [(p.source, p.stage) for p in customer.projects
                                    if p.project == project],
                    [(i.kind, i.occurred_at, i.data)
                     for i in crm.interactions.list(customer.id, project=project)]))
    return out + _outcome(crm, project)


def test_visits_as_one_by_one(crm: CRM) -> None:
    # A batch of visits writes and returns what the same visits one by one do.
    channels = setup_agencies(crm)
    alone = _visits(crm, channels, "XL2", "1381234", batched=False)
    batch = _visits(crm, channels, "XL3", "1391234", batched=True)
    assert batch == alone
    assert alone[0] is not None and alone[0]["state"] == "confirmed"
    names = [row[0] for row in alone[6:11]]  # after the six visits' results
    # a name is filled, never replaced; the unknown mobile is a new customer
    assert names == [None, "Old", "Walk-in", None, "Fresh"]


def test_visits_check_every_agent_first(crm: CRM) -> None:
    channels = setup_agencies(crm)
    with pytest.raises(NotFound):
        channels.visits("XL2", [VisitIn(mobile="13812340000", at=_at(1)),
                                VisitIn(mobile="13812340001", agent="nobody", at=_at(1))])
    assert crm.customers.find(mobile="13812340000") == []


def _registrations(crm: CRM, channels: Channels, project: str, prefix: str,
                   batched: bool) -> list[Any]:
    """Registrations (one mobile registered by two agencies, the second refused; one
    by the same agency again; one of a known customer) one by one or as one
    ``register_many``: their results and the plugin's rows."""
    crm.projects.ensure(project, project)
    mobiles = [f"{prefix}{n:04d}" for n in range(3)]
    known = crm.customers.add({"mobile": mobiles[2]}).customer.id
    crm.interactions.log(known, {"kind": "visit", "project": project, "occurred_at": _at(0)})
    entries = [AgentRegistrationIn(agent="a1", project=project, mobile=mobiles[0],
                                   name="Zhang", at=_at(1)),
               AgentRegistrationIn(agent="b1", project=project, mobile=mobiles[0], at=_at(1.1)),
               AgentRegistrationIn(agent="a2", project=project, mobile=mobiles[1], at=_at(1.2)),
               AgentRegistrationIn(agent="a2", project=project, mobile=mobiles[1], at=_at(1.3)),
               AgentRegistrationIn(agent="b1", project=project, mobile=mobiles[2], at=_at(2))]
    if batched:
        found = channels.register_many(entries)
    else:
        found = []
        for e in entries:
            try:
                found.append(channels.register(e.agent, e.project, e.mobile, e.name, now=e.at))
            except RegistrationRefused as exc:
                found.append(exc.registration)
    return [r.model_dump(exclude={"id", "project", "mobile", "customer_id",
                                  "time_left_seconds"}) for r in found] + _outcome(crm, project)


def test_register_many_as_one_by_one(crm: CRM) -> None:
    # A batch of registrations stores and returns what the same ones one by one do.
    channels = setup_agencies(crm)
    alone = _registrations(crm, channels, "XL2", "1381234", batched=False)
    batch = _registrations(crm, channels, "XL3", "1391234", batched=True)
    assert batch == alone
    assert [r["state"] for r in alone[:5]] == ["pending", "rejected", "pending", "rejected",
                                               "rejected"]


def test_register_many_checks_every_entry_first(crm: CRM) -> None:
    channels = setup_agencies(crm)
    with pytest.raises(InvalidInput):
        channels.register_many([
            AgentRegistrationIn(agent="a1", project="XL2", mobile="13812340000"),
            AgentRegistrationIn(agent="a1", project="XL2", mobile="not a mobile")])
    assert channels.registrations() == []


def test_register_many_reads_agents_rules_and_customers_once(crm: CRM) -> None:
    # The agents, the project's rules and the registered customers are read once for
    # the batch, not once a registration (bench/README.md, session 9): the statements
    # naming their tables do not grow with the batch.
    channels = setup_agencies(crm)
    crm.projects.ensure("XL2", "XL2")
    seen: list[str] = []
    on_cursor = recrm_rawsql._on_cursor

    def record(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        seen.append(" ".join(sql.split()))

    def record_raw(dbapi_connection: Any, sql: str, params: Any, fetch: bool) -> Any:
        record(None, None, sql)
        return on_cursor(dbapi_connection, sql, params, fetch)

    counts = []
    for prefix, size in (("1381234", 2), ("1391234", 8)):
        mobiles = [f"{prefix}{n:04d}" for n in range(size)]
        for mobile in mobiles:
            crm.customers.add({"mobile": mobile})
        seen.clear()
        event.listen(crm.engine, "before_cursor_execute", record)
        recrm_rawsql._on_cursor = record_raw  # the core's statements on the driver's cursor
        try:
            found = channels.register_many([
                AgentRegistrationIn(agent=("a1", "a2", "b1")[n % 3], project="XL2",
                                    mobile=mobile, at=_at(n / 24))
                for n, mobile in enumerate(mobiles)])
        finally:
            event.remove(crm.engine, "before_cursor_execute", record)
            recrm_rawsql._on_cursor = on_cursor
        assert [r.state for r in found] == ["pending"] * size
        counts.append([sum(1 for sql in seen if sql.startswith("SELECT") and f"FROM {table}" in sql)
                       for table in ("channels_agents", "channels_rule_sets", "customers")])
    assert counts[1] == counts[0]
