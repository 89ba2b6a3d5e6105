"""Registrations end to end on both backends: agencies and agents, rule versions,
refusals stored with their reason, 判客 through the core's visit and stage hooks,
reads as of now, the sweep and explanations."""

from __future__ import annotations

import datetime as dt

import pytest
from channels_testkit import PROJECT, setup_agencies
from recrm_channels import RegistrationRefused
from recrm_channels.tables import RegistrationRow
from sqlalchemy import select

from recrm_core import CRM, Actor, Forbidden, utcnow

pytestmark = pytest.mark.recrm_plugins("channels")

MOBILE = "13812345678"


def test_agents_are_partners_in_the_directory(crm: CRM) -> None:
    channels = setup_agencies(crm)
    assert crm.directory.get("a1").role == "partner"
    assert [a.id for a in channels.agents("A")] == ["a1", "a2"]
    assert channels.suspend_agency("B").status == "suspended"
    with pytest.raises(Forbidden):
        channels.add_agency("C", "C", actor=Actor(staff_id="a1", role="partner"))


def test_register_then_visit_confirms_and_the_agency_is_the_source(crm: CRM) -> None:
    channels = setup_agencies(crm)
    reg = channels.register("a1", PROJECT, MOBILE, "王伟")
    assert (reg.state, reg.mobile, reg.rule_version) == ("pending", "+8613812345678", 0)
    assert crm.customers.find(mobile=MOBILE) == []  # no core customer yet
    decided = channels.visit(PROJECT, MOBILE, name="王伟")
    assert decided is not None and decided.id == reg.id and decided.state == "confirmed"
    [customer] = crm.customers.find(mobile=MOBILE)
    [link] = customer.projects
    assert link.source == "channel:A"
    explained = channels.explain(reg.id)
    assert explained.state == "confirmed" and "confirmed by a visit" in explained.explanation
    assert [t.state for t in explained.transitions] == ["pending", "confirmed"]
    # a subscription within protection converts, through the core's stage hook
    crm.customers.set_stage(customer.id, "subscriber", PROJECT, unit="1-1-101", amount=10_000)
    assert channels.explain(reg.id).registration.state == "converted"


def test_refusals_are_stored_and_name_no_agent_nor_mobile(crm: CRM) -> None:
    channels = setup_agencies(crm)
    first = channels.register("a1", PROJECT, MOBILE)
    with pytest.raises(RegistrationRefused) as refused:
        channels.register("b1", PROJECT, "138 1234 5678")
    stored = refused.value.registration
    assert stored.state == "rejected" and stored.id != first.id
    assert "already registered by another agency until" in (stored.reason or "")
    for secret in ("a1", "8613812345678", "13812345678", "Agent A1"):
        assert secret not in str(refused.value)
    with crm.unit_of_work() as uow:
        states = sorted(uow.session.scalars(select(RegistrationRow.state)))
    assert states == ["pending", "rejected"]


def test_known_customer_suspended_agency_and_cap(crm: CRM) -> None:
    channels = setup_agencies(crm)
    c = crm.customers.add({"mobile": "13900000001"}).customer
    crm.interactions.log(c.id, {"kind": "call", "project": PROJECT})
    with pytest.raises(RegistrationRefused, match="known customer"):
        channels.register("a1", PROJECT, "13900000001")
    channels.suspend_agency("B")
    with pytest.raises(RegistrationRefused, match="suspended"):
        channels.register("b1", PROJECT, "13900000002")
    channels.set_rules(PROJECT, {"max_active_per_agent": 1})
    channels.register("a2", PROJECT, "13900000003")
    with pytest.raises(RegistrationRefused, match="over cap"):
        channels.register("a2", PROJECT, "13900000004")


def test_rule_versions_apply_from_their_time(crm: CRM) -> None:
    channels = setup_agencies(crm)
    later = utcnow() + dt.timedelta(days=1)
    channels.set_rules(PROJECT, {"registration_valid_hours": 24}, later)
    versions = channels.rules(PROJECT)
    assert [(v.version, v.rules.registration_valid_hours) for v in versions] == [(0, 72),
                                                                                  (1, 24)]
    now_reg = channels.register("a1", PROJECT, "13700000001")
    assert now_reg.rule_version == 0
    then = channels.register("a1", PROJECT, "13700000002", now=later + dt.timedelta(hours=1))
    assert then.rule_version == 1
    assert then.valid_until == later + dt.timedelta(hours=25)


def test_expiry_reads_at_once_and_the_sweep_writes_it_once(crm: CRM) -> None:
    channels = setup_agencies(crm)
    past = utcnow() - dt.timedelta(hours=80)
    reg = channels.register("a1", PROJECT, MOBILE, now=past)
    assert [r.state for r in channels.registrations()] == ["expired"]
    with crm.unit_of_work() as uow:
        assert uow.session.get(RegistrationRow, reg.id).state == "pending"  # type: ignore[union-attr]
    assert channels.sweep().expired == 1
    assert channels.sweep().expired == 0
    assert [t.state for t in channels.explain(reg.id).transitions] == ["pending", "expired"]
    # a visit now is too late; another agency may register now (known: a visit)
    assert channels.visit(PROJECT, MOBILE).state == "expired"  # type: ignore[union-attr]


def test_stale_pending_rows_are_expired_before_a_new_registration(crm: CRM) -> None:
    channels = setup_agencies(crm)
    channels.register("a1", PROJECT, MOBILE, now=utcnow() - dt.timedelta(days=200))
    fresh = channels.register("b1", PROJECT, MOBILE)
    assert fresh.state == "pending"
    states = {r.agency: r.state for r in channels.registrations()}
    assert states == {"A": "expired", "B": "pending"}


def test_partners_read_their_agency_only_masked(crm: CRM) -> None:
    channels = setup_agencies(crm)
    channels.register("a1", PROJECT, MOBILE, "王伟")
    channels.register("b1", PROJECT, "13900000009", "李娜")
    seen = channels.registrations(actor=Actor(staff_id="a2", role="partner"))
    assert [(r.agency, r.mobile, r.name, r.customer_id) for r in seen] == [
        ("A", "138****5678", "王*", None)]
