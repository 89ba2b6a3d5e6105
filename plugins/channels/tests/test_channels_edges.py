"""Edges of the channels plugin: visit is king through the service, re-entered states in
the history, simulate honouring rulings and paying a unit once, and hostile or
mistaken input refused rather than stored, rounded or cut."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from channels_testkit import PROJECT, setup_agencies
from recrm_channels import RegistrationRefused, service
from recrm_channels.commission import Commissions
from recrm_channels.disputes import Disputes
from recrm_channels.report import report
from recrm_channels.simulate import simulate

from recrm_core import CRM, Actor, InvalidInput, NotFound, utcnow
from recrm_core.testing import ApiClients, problem_of

pytestmark = pytest.mark.recrm_plugins("channels")

MOBILE = "13812345678"
D = dt.timedelta(days=1)
H = dt.timedelta(hours=1)
MANAGER = Actor(staff_id="m1", role="manager")


def test_visit_is_king_gives_the_customer_to_the_accompanying_agency(crm: CRM) -> None:
    channels = setup_agencies(crm)
    channels.set_rules(PROJECT, {"visit_is_king": True})
    first = channels.register("a1", PROJECT, MOBILE)
    decided = channels.visit(PROJECT, MOBILE, agent="b1")
    assert decided is not None and (decided.agency, decided.state) == ("B", "confirmed")
    states = {r.agency: r.state for r in channels.registrations()}
    assert states == {"A": "expired", "B": "confirmed"}
    assert "visit is king" in (channels.explain(first.id).explanation)
    # a second accompanied visit by the same agency registers nothing new
    channels.visit(PROJECT, MOBILE, agent="b1")
    assert len(channels.registrations()) == 2


def test_a_cancelled_deal_and_a_new_one_are_both_in_the_history(crm: CRM) -> None:
    channels = setup_agencies(crm)
    reg = channels.register("a1", PROJECT, MOBILE)
    channels.visit(PROJECT, MOBILE)
    [customer] = crm.customers.find(mobile=MOBILE)
    crm.customers.set_stage(customer.id, "buyer", PROJECT, unit="1-101", amount=1_000_000)
    crm.customers.set_stage(customer.id, "visitor", PROJECT, force=True)  # cancelled
    crm.customers.set_stage(customer.id, "buyer", PROJECT, unit="1-102", amount=1_000_000)
    states = [t.state for t in channels.explain(reg.id).transitions]
    assert states == ["pending", "confirmed", "converted", "confirmed", "converted"]


def test_the_released_holder_is_released_at_the_ruling(crm: CRM) -> None:
    channels = setup_agencies(crm)
    held = channels.register("a1", PROJECT, MOBILE, now=utcnow() - 2 * D)
    with pytest.raises(RegistrationRefused) as lost:
        channels.register("b1", PROJECT, MOBILE, now=utcnow() - D)
    channels.visit(PROJECT, MOBILE, at=utcnow() - 20 * H)
    [customer] = crm.customers.find(mobile=MOBILE)
    crm.customers.set_stage(customer.id, "subscriber", PROJECT, unit="1-101", amount=50_000)
    disputes = Disputes(crm)
    opened = disputes.open(lost.value.registration.id, "ours")
    ruled = disputes.resolve(opened.id, uphold=True, note="ok", actor=MANAGER)
    assert ruled.resolved_at is not None
    released = [t for t in channels.explain(held.id).transitions if t.state == "released"]
    assert [t.at for t in released] == [ruled.resolved_at]


def test_simulate_replays_rulings_and_pays_a_shared_unit_once(crm: CRM) -> None:
    channels = setup_agencies(crm)
    Commissions(crm).set_terms("A", PROJECT, fixed="30000")
    Commissions(crm).set_terms("B", PROJECT, fixed="30000")
    t0 = utcnow() - 5 * D
    # co-buyers: two customers registered by A, one unit signed by both
    for mobile in (MOBILE, "13912345678"):
        channels.register("a1", PROJECT, mobile, now=t0)
        channels.visit(PROJECT, mobile, at=t0 + H)
        [c] = crm.customers.find(mobile=mobile)
        crm.customers.set_stage(c.id, "buyer", PROJECT, unit="1-101", amount=2_000_000)
    # a third customer: B loses, disputes, is upheld
    channels.register("a2", PROJECT, "13712345678", now=t0)
    with pytest.raises(RegistrationRefused) as lost:
        channels.register("b1", PROJECT, "13712345678", now=t0 + H)
    channels.visit(PROJECT, "13712345678", at=t0 + 2 * H)
    disputes = Disputes(crm)
    opened = disputes.open(lost.value.registration.id, "ours")
    disputes.resolve(opened.id, uphold=True, note="ok", actor=MANAGER)
    same = simulate(crm, PROJECT, {})
    assert same.changes == [] and same.attributions == []
    assert same.simulated_states == same.states
    by_agency = {c.agency: (c.commission, c.simulated_commission) for c in same.commissions}
    assert by_agency["A"] == (Decimal("30000.00"), Decimal("30000.00"))


def test_hostile_and_mistaken_input_is_refused(crm: CRM) -> None:
    channels = setup_agencies(crm)
    for bad in ("a\x00b", "a\x01b", "x" * 101):
        with pytest.raises(InvalidInput) as refused:
            channels.register("a1", PROJECT, MOBILE, bad)
        assert refused.value.field == "name"
    with pytest.raises(InvalidInput):
        channels.add_agency("X\x01", "X")
    with pytest.raises(InvalidInput, match="longer than 200"):
        channels.add_agency("LONG", "n" * 201)
    with pytest.raises(InvalidInput, match="more than two decimal places"):
        Commissions(crm).set_terms("A", PROJECT, fixed="0.001")
    with pytest.raises(InvalidInput, match="more than four decimal places"):
        Commissions(crm).set_terms("A", PROJECT, percent="1.23456")
    for rules in ({"visit_is_king": "yes"}, {"registration_valid_hours": True},
                  {"known_customer_days": "90"}):
        with pytest.raises(InvalidInput):
            channels.set_rules(PROJECT, rules)
    with pytest.raises(InvalidInput, match="future"):
        channels.visit(PROJECT, MOBILE, at=utcnow() + 2 * H)
    with pytest.raises(NotFound):
        channels.explain(10**30)
    with pytest.raises(NotFound):
        Disputes(crm).open(10**30, "x")
    with pytest.raises(InvalidInput):
        Disputes(crm).open(1, "a\x00b")
    with pytest.raises(NotFound):
        report(crm, project="NOPE")
    with pytest.raises(InvalidInput):
        report(crm, start=utcnow(), end=utcnow() - D)


def test_a_converted_holder_is_named_without_an_end(crm: CRM) -> None:
    channels = setup_agencies(crm)
    channels.register("a1", PROJECT, MOBILE)
    channels.visit(PROJECT, MOBILE)
    [c] = crm.customers.find(mobile=MOBILE)
    crm.customers.set_stage(c.id, "subscriber", PROJECT, unit="1-101", amount=50_000)
    with pytest.raises(RegistrationRefused) as refused:
        channels.register("b1", PROJECT, MOBILE)
    assert "already registered by another agency, which converted the customer" in str(
        refused.value)


def test_the_cap_counts_the_projects_own_registrations(crm: CRM) -> None:
    channels = setup_agencies(crm)
    crm.projects.ensure("P2", "P2")
    channels.set_rules(PROJECT, {"max_active_per_agent": 1})
    channels.register("a1", "P2", "13900000001")
    assert channels.register("a1", PROJECT, MOBILE).state == "pending"
    with pytest.raises(RegistrationRefused, match="agent over cap"):
        channels.register("a1", PROJECT, "13900000002")


def test_the_api_refuses_bad_filters_and_nul(crm: CRM, api_client: ApiClients) -> None:
    setup_agencies(crm)
    a1 = api_client("partner", staff="a1")
    problem_of(a1.get("/v1/channels/registrations?state=bogus"), 422)
    problem_of(a1.get("/v1/channels/disputes?state=bogus"), 422)
    problem_of(a1.post("/v1/channels/registrations",
                       json={"project": PROJECT, "mobile": MOBILE, "name": "a\u0000b"}), 422)
    assert service(crm).registrations() == []
