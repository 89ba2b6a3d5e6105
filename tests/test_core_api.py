"""Core API that plugins build on: in-transaction lookups, project lookup, consent
states in SQL, the stage change's time, and one contract per simultaneous move."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from recrm_core import (
    CRM,
    Customer,
    NotFound,
    StageChange,
    UnitOfWork,
    consent_granted_clause,
    consent_withdrawn_clause,
    hookimpl,
)
from recrm_core.tables import CustomerRow


def test_get_in_and_resolve_in_follow_merges(crm: CRM) -> None:
    a = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer
    b = crm.customers.add({"mobile": "13912345678"}).customer
    crm.customers.merge(a.id, b.id)
    with crm.unit_of_work() as uow:
        assert crm.customers.resolve_in(uow, b.id) == a.id
        got = crm.customers.get_in(uow, b.id)
        assert got.id == a.id and got.name == "王伟"
        with pytest.raises(NotFound):
            crm.customers.resolve_in(uow, 9999)


def test_projects_get(crm: CRM) -> None:
    crm.projects.ensure("XL2", "星珑湾二期")
    assert crm.projects.get(" XL2 ").name == "星珑湾二期"
    with pytest.raises(NotFound, match="no such project 'YH9'"):
        crm.projects.get("YH9")


def test_consent_states_tell_withdrawn_from_never_asked(crm: CRM) -> None:
    granted = crm.customers.add({"mobile": "13812345670"}).customer.id
    withdrawn = crm.customers.add({"mobile": "13812345671"}).customer.id
    never = crm.customers.add({"mobile": "13812345672"}).customer.id
    crm.consent.grant(granted, "sms", "surveys")
    crm.consent.grant(withdrawn, "sms", "surveys")
    crm.consent.withdraw(withdrawn, "sms", "surveys")
    with crm.unit_of_work(readonly=True) as uow:
        def ids(clause: Any) -> set[int]:
            return set(uow.session.scalars(select(CustomerRow.id).where(clause)))

        assert ids(consent_granted_clause(CustomerRow.id, "sms", "surveys")) == {granted}
        assert ids(consent_withdrawn_clause(CustomerRow.id, "sms", "surveys")) == {withdrawn}
        assert never not in ids(consent_granted_clause(CustomerRow.id, "sms", "surveys"))


def test_stage_change_carries_its_time(crm: CRM, register_plugin: Callable[..., str]) -> None:
    seen: list[StageChange] = []

    class Recorder:
        @hookimpl
        def recrm_stage_changed(
            self, uow: UnitOfWork, customer: Customer, change: StageChange
        ) -> None:
            seen.append(change)

    register_plugin(Recorder(), "recorder")
    c = crm.customers.add({"mobile": "13812345678"}).customer
    signed = dt.datetime(2025, 3, 1, 2, 30, tzinfo=dt.UTC)
    crm.customers.set_stage(c.id, "buyer", "XL2", occurred_at=signed)
    crm.customers.set_stage(c.id, "owner", "XL2")
    assert seen[0].occurred_at == signed
    assert seen[1].occurred_at is not None and seen[1].occurred_at > signed


def test_simultaneous_moves_record_one_contract(crm_factory: Callable[..., CRM]) -> None:
    crms = [crm_factory(), crm_factory()]
    for round_ in range(3):
        cid = crms[0].customers.add({"mobile": f"1381234560{round_}"}).customer.id
        if round_ % 2:  # an existing link, and (else) a link both moves must create
            crms[0].customers.set_stage(cid, "visitor", "XL2")
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def move(
            crm: CRM,
            cid: int = cid,
            barrier: threading.Barrier = barrier,
            errors: list[BaseException] = errors,
        ) -> None:
            try:
                barrier.wait(timeout=30)
                crm.customers.set_stage(cid, "buyer", "XL2", unit="3-1201", amount=1)
            except BaseException as exc:  # a thread's failure fails the test below
                errors.append(exc)

        threads = [threading.Thread(target=move, args=(c,)) for c in crms]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors
        kinds = [i.kind for i in crms[0].interactions.list(cid)]
        assert kinds.count("contract") == 1, kinds
        assert crms[0].customers.get(cid).stage == "buyer"
