"""``simulate``: the last days replayed under other rules, with the service's own
decisions (attribute + acceptance), and nothing written."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from channels_testkit import PROJECT, setup_agencies
from recrm_channels import RegistrationRefused
from recrm_channels.simulate import simulate
from recrm_channels.tables import RegistrationRow, TransitionRow
from sqlalchemy import select

from recrm_core import CRM, Actor, Forbidden, InvalidInput, utcnow
from recrm_core.tables import AuditRow
from recrm_core.testing import RecrmCliRunner

pytestmark = pytest.mark.recrm_plugins("channels")

M1, M2, M3 = "13812345678", "13912345678", "13712345678"
SHORTER = {"registration_valid_hours": 24, "known_customer_days": 0}


def _scenario(crm: CRM) -> dict[str, int]:
    """M1: registered by A, visited 30 h later (confirmed under 72 h). M2: registered by
    A, then by B 48 h later (refused: A held it). M3: registered and visited at once."""
    channels = setup_agencies(crm)
    t0 = utcnow() - dt.timedelta(days=10)
    r1 = channels.register("a1", PROJECT, M1, "王伟", now=t0)
    channels.visit(PROJECT, M1, at=t0 + dt.timedelta(hours=30))
    r2 = channels.register("a1", PROJECT, M2, now=t0)
    with pytest.raises(RegistrationRefused, match="already registered by another agency"):
        channels.register("b1", PROJECT, M2, now=t0 + dt.timedelta(hours=48))
    r3 = channels.register("a2", PROJECT, M3, now=t0)
    channels.visit(PROJECT, M3, at=t0 + dt.timedelta(hours=1))
    with crm.unit_of_work() as uow:
        refused = uow.session.scalars(select(RegistrationRow.id).where(
            RegistrationRow.state == "rejected")).one()
    return {"r1": r1.id, "r2": r2.id, "r2b": refused, "r3": r3.id}


def _snapshot(crm: CRM) -> Any:
    with crm.unit_of_work() as uow:
        regs = [(r.id, r.state, r.reason, r.decided_at, r.ended_at)
                for r in uow.session.scalars(select(RegistrationRow).order_by(RegistrationRow.id))]
        transitions = len(uow.session.scalars(select(TransitionRow.id)).all())
        audit = len(uow.session.scalars(select(AuditRow.id)).all())
    return regs, transitions, audit


def test_a_shorter_window_flips_specific_registrations_and_writes_nothing(crm: CRM) -> None:
    ids = _scenario(crm)
    before = _snapshot(crm)
    result = simulate(crm, PROJECT, SHORTER, days=30)
    assert _snapshot(crm) == before
    assert result.registrations == 4 and result.rule_version == 1
    assert (result.accepted, result.rejected) == (3, 1)
    assert (result.simulated_accepted, result.simulated_rejected) == (4, 0)
    changed = {c.registration: c for c in result.changes}
    assert set(changed) == {ids["r1"], ids["r2b"]}
    one = changed[ids["r1"]]
    assert (one.state, one.simulated_state) == ("confirmed", "expired")
    assert "no visit within 24 hours" in one.simulated_reason
    assert one.mobile == "138****5678"
    b = changed[ids["r2b"]]
    assert (b.state, b.simulated_state, b.agency) == ("rejected", "expired", "B")
    assert "already registered" in (b.reason or "")
    assert [(a.agency, a.simulated_agency) for a in result.attributions] == [("A", None)]
    assert result.states == {"confirmed": 2, "expired": 1, "rejected": 1}
    assert result.simulated_states == {"confirmed": 1, "expired": 3}


def test_the_same_rules_change_nothing_and_the_window_counts(crm: CRM) -> None:
    _scenario(crm)
    same = simulate(crm, PROJECT, {})
    assert same.changes == [] and same.attributions == []
    assert same.simulated_states == same.states
    assert simulate(crm, PROJECT, SHORTER, days=5).registrations == 0


def test_cap_and_suspension_are_the_services_own_checks(crm: CRM) -> None:
    channels = setup_agencies(crm)
    t0 = utcnow() - dt.timedelta(days=3)
    for i in range(3):
        channels.register("a1", PROJECT, f"1381111000{i}", now=t0 + dt.timedelta(minutes=i))
    capped = simulate(crm, PROJECT, {"max_active_per_agent": 2})
    [change] = capped.changes
    assert change.simulated_state == "rejected" and "agent over cap" in change.simulated_reason
    channels.suspend_agency("A")
    # Suspended after the registrations were made: they stand.
    assert simulate(crm, PROJECT, {}).changes == []


def test_simulate_is_for_managers_and_checks_the_rules(crm: CRM) -> None:
    setup_agencies(crm)
    with pytest.raises(Forbidden):
        simulate(crm, PROJECT, {}, actor=Actor(staff_id="a1", role="partner"))
    with pytest.raises(InvalidInput):
        simulate(crm, PROJECT, {"registration_valid_hours": 0})
    with pytest.raises(InvalidInput):
        simulate(crm, PROJECT, {"no_such_rule": 1})


def test_simulate_on_the_command_line(crm: CRM, cli_runner: RecrmCliRunner,
                                      tmp_path: Path) -> None:
    ids = _scenario(crm)
    rules = tmp_path / "rules.toml"
    rules.write_text("registration_valid_hours = 24\nknown_customer_days = 0\n",
                     encoding="utf-8")
    result = cli_runner.invoke("channel", "simulate", "--project", PROJECT, "--rules",
                               str(rules), "--days", "30", "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert {c["registration"] for c in data["changes"]} == {ids["r1"], ids["r2b"]}
    text = cli_runner.invoke("channel", "simulate", "--project", PROJECT, "--rules",
                             str(rules))
    assert text.exit_code == 0, text.stderr
    assert "rejected 1 → 0" in text.stdout and "138****5678" in text.stdout
    assert "13812345678" not in text.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text("registration_valid_hours = 0\n", encoding="utf-8")
    refused = cli_runner.invoke("channel", "simulate", "--project", PROJECT, "--rules",
                                str(bad))
    assert refused.exit_code == 2


def test_commission_is_compared_per_agency(crm: CRM) -> None:
    from decimal import Decimal

    from recrm_channels.commission import Commissions

    setup_agencies(crm)
    money = Commissions(crm)
    money.set_terms("A", PROJECT, percent="1", visit_reward="100", subscription_reward="300")
    money.set_terms("B", PROJECT, fixed="20000", visit_reward="200")
    from recrm_channels import service

    t0 = utcnow() - dt.timedelta(days=10)
    svc = service(crm)
    svc.register("a1", PROJECT, M1, now=t0)
    svc.visit(PROJECT, M1, at=t0 + dt.timedelta(hours=30))
    svc.register("a2", PROJECT, M3, now=t0)
    svc.visit(PROJECT, M3, at=t0 + dt.timedelta(hours=1))
    [customer] = crm.customers.find(mobile=M1)
    crm.customers.set_stage(customer.id, "subscriber", PROJECT, unit="3-1201", amount=50_000)
    crm.customers.set_stage(customer.id, "buyer", PROJECT, unit="3-1201", amount=2_000_000)
    same = simulate(crm, PROJECT, {})
    assert same.commission == same.simulated_commission == Decimal("20500.00")
    shorter = simulate(crm, PROJECT, SHORTER)
    [a] = shorter.commissions
    assert (a.agency, a.commission, a.simulated_commission) == (
        "A", Decimal("20500.00"), Decimal("100.00"))
    # a visit-is-king rule (no agent came along): nobody earns
    king = simulate(crm, PROJECT, {"visit_is_king": True})
    assert king.simulated_commission == Decimal("0.00")
