"""Disputes: who may open one, dismissal, and an upheld ruling that re-attributes (with
history), moves the commission and stays in every later replay of 判客; on both
backends. The pure function's side of a ruling is tested first."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from channels_testkit import PROJECT, setup_agencies
from recrm_channels import Event, RuleBook, Rules, attribute, service
from recrm_channels.commission import Commissions
from recrm_channels.disputes import Disputes

from recrm_core import CRM, Actor, Forbidden, InvalidInput, NotFound, Refused, utcnow

pytestmark = pytest.mark.recrm_plugins("channels")

T0 = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)
MOBILE = "13812345678"
MANAGER = Actor(staff_id="m1", role="manager")
SALES = Actor(staff_id="s1", role="sales")


def test_a_ruling_awards_its_registration_and_releases_the_holder() -> None:
    events = [
        Event("registration", T0, 1, "A", "a1"),               # expires at T0 + 72h
        Event("registration", T0 + 4 * D, 2, "B", "b1"),
        Event("visit", T0 + 4 * D + H, 10),                     # confirms B
        Event("stage", T0 + 10 * D, 11, stage="subscriber"),   # converts B
        Event("ruling", T0 + 12 * D, 7, "A", registration=1),
        Event("registration", T0 + 13 * D, 3, "B", "b2"),
    ]
    # (known_customer_days=1: B's registration is not refused for A's expired one)
    d = attribute(events, RuleBook(Rules(known_customer_days=1)), T0 + 14 * D)
    assert (d.state, d.registration, d.agency) == ("converted", 1, "A")
    assert "dispute #7 upheld" in d.explanation and "converted by stage subscriber" in d.explanation
    assert d.times["confirmed_at"] == T0 + 4 * D + H
    loser = d.of(2)
    assert loser is not None and loser.state == "released"
    assert loser.ended_at == T0 + 12 * D and "dispute #7 upheld for agency A" in loser.explanation
    # until the ruling B held the customer: the history before it is unchanged
    assert loser.live_at(T0 + 11 * D)
    later = d.of(3)
    assert later is not None and later.state == "rejected"
    assert "already registered by another agency, which converted" in later.explanation


def test_a_ruling_without_a_visit_confirms_from_the_ruling() -> None:
    events = [Event("registration", T0, 1, "A", "a1", refused="agent over cap"),
              Event("ruling", T0 + D, 5, "A", registration=1)]
    before = attribute(events[:1], RuleBook(Rules()), T0 + H)
    assert before.state == "rejected" and before.explanation == "agent over cap"
    d = attribute(events, RuleBook(Rules()), T0 + 2 * D)
    assert d.state == "confirmed" and "confirmed by the ruling" in d.explanation
    assert d.times["protected_until"] == T0 + D + 30 * D
    assert attribute(events, RuleBook(Rules()), T0 + 32 * D).state == "released"


def _scene(crm: CRM) -> tuple[int, int, int]:
    """B registers; A's registration is refused (B holds the customer); the customer
    visits, subscribes and signs (B converted, B's commission); returns (A's reg, B's
    reg, customer)."""
    channels = setup_agencies(crm)
    money = Commissions(crm)
    money.set_terms("A", PROJECT, percent="1", visit_reward="100", subscription_reward="300")
    money.set_terms("B", PROJECT, fixed="20000", visit_reward="200")
    now = utcnow()
    b = channels.register("b1", PROJECT, MOBILE, "张三", now=now - 2 * D)
    with pytest.raises(Refused) as refused:
        channels.register("a1", PROJECT, MOBILE, "张三", now=now - D - H)
    a = refused.value.registration  # type: ignore[attr-defined]
    channels.visit(PROJECT, MOBILE, at=now - D)
    [customer] = crm.customers.find(mobile=MOBILE)
    crm.customers.set_stage(customer.id, "subscriber", PROJECT, unit="3-1201", amount=100_000)
    crm.customers.set_stage(customer.id, "buyer", PROJECT, unit="3-1201", amount=2_000_000)
    return a.id, b.id, customer.id


def _ledger(crm: CRM, agency: str) -> list[tuple[str, Decimal]]:
    return [(e.kind, e.amount) for e in Commissions(crm).entries(agency)]


def test_upheld_dispute_re_attributes_and_moves_the_commission(crm: CRM) -> None:
    a, b, cid = _scene(crm)
    channels = service(crm)
    states = {r.id: r.state for r in channels.registrations()}
    assert (states[a], states[b]) == ("rejected", "converted")
    assert _ledger(crm, "B") == [("visit", Decimal("200.00")), ("deal", Decimal("20000.00"))]
    disputes = Disputes(crm)
    opened = disputes.open(a, "the customer came with our agent on Monday", actor=SALES)
    assert (opened.state, opened.claimant, opened.agency) == ("open", a, "A")
    ruled = disputes.resolve(opened.id, uphold=True, note="CCTV shows agent a1",
                             actor=MANAGER)
    assert ruled.state == "upheld" and ruled.resolved_by == "m1"
    states = {r.id: r.state for r in channels.registrations()}
    assert (states[a], states[b]) == ("converted", "released")
    # B's entries reversed, A earns the same steps under A's terms (1% of 2,000,000)
    assert _ledger(crm, "B") == [("visit", Decimal("200.00")), ("deal", Decimal("20000.00")),
                                 ("clawback", Decimal("-200.00")),
                                 ("clawback", Decimal("-20000.00"))]
    assert sorted(_ledger(crm, "A")) == [("deal", Decimal("20000.00")),
                                         ("subscription", Decimal("300.00")),
                                         ("visit", Decimal("100.00"))]
    # history: both registrations record the ruling; explain replays it
    why = channels.explain(a)
    assert why.state == "converted" and f"dispute #{opened.id} upheld" in why.explanation
    assert [t.state for t in why.transitions] == ["rejected", "converted"]
    lost = channels.explain(b)
    assert lost.state == "released" and f"dispute #{opened.id} upheld" in lost.explanation
    assert "CCTV" not in why.explanation  # notes are personal data, never in explanations
    # later replays (another visit, a sweep) honour the ruling; nothing is earned twice
    channels.visit(PROJECT, MOBILE)
    channels.sweep(actor=MANAGER)
    assert {r.id: r.state for r in channels.registrations()}[a] == "converted"
    assert len(_ledger(crm, "A")) == 3 and len(_ledger(crm, "B")) == 4
    # a new registration of the customer is refused: A holds them
    with pytest.raises(Refused, match="already registered by another agency"):
        channels.register("b1", PROJECT, MOBILE)
    assert crm.customers.get(cid).id == cid


def test_a_rejected_registration_is_disputed_and_upheld(crm: CRM) -> None:
    channels = setup_agencies(crm)
    now = utcnow()
    first = channels.register("a1", PROJECT, MOBILE, now=now - H)
    with pytest.raises(Refused) as refused:
        channels.register("b1", PROJECT, MOBILE, actor=Actor(staff_id="b1", role="partner"))
    rejected = refused.value.registration.id  # type: ignore[attr-defined]
    partner = Actor(staff_id="b1", role="partner")
    opened = Disputes(crm).open(rejected, "we registered them by phone first", actor=partner)
    assert [d.id for d in Disputes(crm).list(actor=partner)] == [opened.id]
    assert Disputes(crm).list(actor=Actor(staff_id="a1", role="partner")) == []
    Disputes(crm).resolve(opened.id, uphold=True, note="phone log", actor=MANAGER)
    states = {r.id: r.state for r in channels.registrations()}
    assert (states[first.id], states[rejected]) == ("released", "confirmed")
    assert [t.state for t in channels.explain(rejected).transitions] == ["rejected",
                                                                         "confirmed"]


def test_dismissed_changes_nothing_and_rulings_are_final(crm: CRM) -> None:
    a, b, _ = _scene(crm)
    disputes = Disputes(crm)
    opened = disputes.open(a, "ours", actor=SALES)
    with pytest.raises(Refused, match="open already"):
        disputes.open(a, "ours again", actor=SALES)
    with pytest.raises(Forbidden):
        disputes.resolve(opened.id, uphold=True, note="x", actor=SALES)
    done = disputes.resolve(opened.id, uphold=False, note="no evidence", actor=MANAGER)
    assert done.state == "dismissed"
    with pytest.raises(Refused, match="dismissed already"):
        disputes.resolve(opened.id, uphold=True, note="x", actor=MANAGER)
    states = {r.id: r.state for r in service(crm).registrations()}
    assert (states[a], states[b]) == ("rejected", "converted")
    assert len(_ledger(crm, "A")) == 0
    # once dismissed, the agency may dispute again
    assert disputes.open(a, "new evidence", actor=SALES).state == "open"


def test_who_may_dispute_what(crm: CRM) -> None:
    a, b, _ = _scene(crm)
    disputes = Disputes(crm)
    with pytest.raises(Refused, match="is converted"):
        disputes.open(b, "mine", actor=SALES)  # B's own registration holds the customer
    with pytest.raises(Refused, match="is rejected: another agency's"):
        disputes.open(a, "theirs", agency="B", actor=SALES)
    with pytest.raises(Refused, match="no registration of this customer"):
        service(crm).add_agency("C", "C")
        disputes.open(b, "ours", agency="C", actor=SALES)
    # a partner never reaches another agency's registration, not even to learn it exists
    with pytest.raises(NotFound):
        disputes.open(b, "ours", actor=Actor(staff_id="a1", role="partner"))
    with pytest.raises(NotFound):
        disputes.open(10_000, "x", actor=SALES)
    with pytest.raises(InvalidInput):
        disputes.open(a, "  ", actor=SALES)
    with pytest.raises(Forbidden):
        disputes.open(a, "x", actor=Actor(staff_id="x", role="analyst"))
    # another agency's converted registration, disputed by the office for agency A
    opened = disputes.open(b, "A's customer", agency="A", actor=SALES)
    assert (opened.registration, opened.claimant, opened.agency) == (b, a, "A")


def test_dispute_notes_are_exported_and_erased(crm: CRM) -> None:
    a, _, cid = _scene(crm)
    opened = Disputes(crm).open(a, "张三 says he came with a1", actor=SALES)
    exported = crm.privacy.export(cid)
    text = json.dumps(exported, ensure_ascii=False, default=str)
    assert "张三 says he came with a1" in text
    crm.privacy.erase(cid, reason="PIPL Art. 47 request", actor=Actor(staff_id="adm",
                                                                       role="admin"))
    [left] = Disputes(crm).list()
    assert left.id == opened.id and left.note is None and left.state == "open"
