"""The commission ledger on both backends: terms, each entry once (retries, concurrent
stage moves in several processes), co-buyers never double a deal, a clawback when the
deal is cancelled, exact money, and ``referral_vs_agency`` with the membership plugin."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from channels_testkit import PROJECT, setup_agencies
from recrm_channels.commission import CommissionEntry, Commissions, accrue_in
from recrm_channels.tables import CommissionEntryRow
from sqlalchemy import func, select

from recrm_core import CRM, Actor, Forbidden, InvalidInput, utcnow
from recrm_core.testing import StartLine, run_together

pytestmark = pytest.mark.recrm_plugins("channels")

MOBILE = "13812345678"


def _terms(crm: CRM, **kwargs: Any) -> Commissions:
    money = Commissions(crm)
    money.set_terms("A", PROJECT, **({"percent": "1.5", "visit_reward": "200",
                                      "subscription_reward": "500.50"} | kwargs))
    return money


def _kinds(entries: list[CommissionEntry]) -> list[tuple[str, Decimal]]:
    return [(e.kind, e.amount) for e in entries]


def _visited(crm: CRM, mobile: str = MOBILE, agent: str = "a1") -> int:
    from recrm_channels import service

    service(crm).register(agent, PROJECT, mobile)
    service(crm).visit(PROJECT, mobile)
    [customer] = crm.customers.find(mobile=mobile)
    return customer.id


def test_terms_set_and_show_exact_money(crm: CRM) -> None:
    setup_agencies(crm)
    money = _terms(crm)
    [terms] = money.terms()
    assert (terms.percent, terms.fixed, terms.visit_reward, terms.subscription_reward) == (
        Decimal("1.5000"), None, Decimal("200.00"), Decimal("500.50"))
    money.set_terms("A", PROJECT, fixed="30000")
    [terms] = money.terms("A")
    assert (terms.percent, terms.fixed, terms.visit_reward) == (None, Decimal("30000.00"),
                                                                Decimal("0.00"))
    for bad in ({}, {"percent": "1", "fixed": "2"}, {"percent": "101"}, {"fixed": "-1"},
                {"fixed": "abc"}, {"fixed": 1.5}):
        with pytest.raises(InvalidInput):
            money.set_terms("A", PROJECT, **bad)
    with pytest.raises(Forbidden):
        money.set_terms("A", PROJECT, fixed="1", actor=Actor(staff_id="s1", role="sales"))
    [first, second] = crm.audit.entries(action="channels.terms")
    assert first.details["percent"] == "1.5000" and second.details["fixed"] == "30000.00"


def test_visit_subscription_and_deal_each_once(crm: CRM) -> None:
    setup_agencies(crm)
    money = _terms(crm)
    cid = _visited(crm)
    assert _kinds(money.entries()) == [("visit", Decimal("200.00"))]
    crm.customers.set_stage(cid, "subscriber", PROJECT, unit="3-1201", amount=50_000)
    crm.customers.set_stage(cid, "buyer", PROJECT, unit="3-1201", amount=3_333_333)
    # the same step again, and the ledger asked again (a retry): nothing new
    crm.customers.set_stage(cid, "buyer", PROJECT, unit="3-1201", amount=3_333_333)
    with crm.unit_of_work() as uow:
        accrue_in(uow, crm.customers.get(cid), PROJECT)
    entries = money.entries()
    assert _kinds(entries) == [("visit", Decimal("200.00")),
                               ("subscription", Decimal("500.50")),
                               ("deal", Decimal("50000.00"))]
    deal = entries[-1]
    assert (deal.unit, deal.deal_amount, deal.agency) == ("3-1201", Decimal("3333333.00"), "A")
    assert all(isinstance(e.amount, Decimal) for e in entries)
    # a partner sees their own agency's, masked; another agency's partner nothing
    mine = money.entries(actor=Actor(staff_id="a2", role="partner"))
    assert [e.mobile for e in mine] == ["138****5678"] * 3
    assert money.entries(actor=Actor(staff_id="b1", role="partner")) == []


def test_no_terms_no_entries_and_fixed_terms(crm: CRM) -> None:
    setup_agencies(crm)
    cid = _visited(crm)
    crm.customers.set_stage(cid, "buyer", PROJECT, unit="1-101", amount=1_000_000)
    assert Commissions(crm).entries() == []
    Commissions(crm).set_terms("B", PROJECT, fixed="8888.88")
    other = _visited(crm, "13912345678", agent="b1")
    crm.customers.set_stage(other, "buyer", PROJECT, unit="1-102")
    assert _kinds(Commissions(crm).entries()) == [("deal", Decimal("8888.88"))]


def test_co_buyers_of_one_unit_never_double_the_deal(crm: CRM) -> None:
    setup_agencies(crm)
    money = _terms(crm, visit_reward="0", subscription_reward="0")
    first = _visited(crm, "13812345678")
    second = _visited(crm, "13912345678", agent="a2")
    crm.customers.set_stage(first, "buyer", PROJECT, unit="5-501", amount=2_000_000)
    crm.customers.set_stage(second, "buyer", PROJECT, unit="5-501", amount=2_000_000)
    assert _kinds(money.entries()) == [("deal", Decimal("30000.00"))]


def test_a_cancelled_deal_is_clawed_back_and_the_registration_confirmed(crm: CRM) -> None:
    channels = setup_agencies(crm)
    money = _terms(crm)
    cid = _visited(crm)
    crm.customers.set_stage(cid, "buyer", PROJECT, unit="3-1201", amount=2_000_000)
    [reg] = channels.registrations()
    assert reg.state == "converted"
    crm.customers.set_stage(cid, "visitor", PROJECT, force=True)
    [reg] = channels.registrations()
    assert reg.state == "confirmed"
    entries = money.entries()
    assert _kinds(entries) == [("visit", Decimal("200.00")), ("deal", Decimal("30000.00")),
                               ("clawback", Decimal("-30000.00"))]
    assert entries[-1].reverses == entries[1].id
    assert "moved back from buyer to visitor" in (entries[-1].note or "")
    # moved back again: nothing more; the unit signed again earns again
    crm.customers.set_stage(cid, "prospect", PROJECT, force=True)
    assert len(money.entries()) == 3
    crm.customers.set_stage(cid, "buyer", PROJECT, unit="3-1201", amount=2_000_000)
    assert channels.registrations()[0].state == "converted"
    assert sum(e.amount for e in money.entries()) == Decimal("30200.00")
    # a later visit replays the events: the registration stays converted
    channels.visit(PROJECT, MOBILE)
    assert channels.registrations()[0].state == "converted"


@pytest.mark.recrm_settings(channels={"visit_protection_days": 2})
def test_a_deal_cancelled_after_the_protection_releases(crm: CRM) -> None:
    channels = setup_agencies(crm)
    money = _terms(crm, visit_reward="0")
    now = utcnow()
    channels.register("a1", PROJECT, MOBILE, now=now - dt.timedelta(days=3))
    channels.visit(PROJECT, MOBILE, at=now - dt.timedelta(days=2, hours=12))
    [customer] = crm.customers.find(mobile=MOBILE)
    crm.customers.set_stage(customer.id, "buyer", PROJECT, unit="3-1201", amount=1_000_000,
                            occurred_at=now - dt.timedelta(days=1))
    assert channels.registrations()[0].state == "converted"
    crm.customers.set_stage(customer.id, "visitor", PROJECT, force=True)
    assert channels.registrations()[0].state == "released"
    assert _kinds(money.entries()) == [("deal", Decimal("15000.00")),
                                       ("clawback", Decimal("-15000.00"))]


def _mover(url: str, cid: int, start: StartLine) -> None:
    with CRM(database_url=url, plugins=["channels"]) as crm:
        start.wait()
        crm.customers.set_stage(cid, "buyer", PROJECT, unit="7-701", amount=1_000_000)


def test_processes_moving_one_customer_to_buyer_at_once_write_one_deal(
    crm: CRM, recrm_database_url: str
) -> None:
    setup_agencies(crm)
    _terms(crm, visit_reward="0", subscription_reward="0")
    cid = _visited(crm)
    # every one of the four moves succeeds (run_together fails the test otherwise)
    run_together(_mover, [(recrm_database_url, cid)] * 4)
    with crm.unit_of_work() as uow:
        deals = uow.session.scalar(select(func.count()).select_from(CommissionEntryRow)
                                   .where(CommissionEntryRow.kind == "deal"))
    assert deals == 1


# -- referral_vs_agency (老带新 and an agency's registration) ------------------------------


def _referred_and_signed(crm: CRM) -> tuple[int, int]:
    from recrm_membership import service as membership

    setup_agencies(crm)
    _terms(crm, visit_reward="0", subscription_reward="0")
    referrer = crm.customers.add({"mobile": "13700000001", "name": "老业主"}).customer
    crm.customers.set_stage(referrer.id, "buyer", PROJECT, unit="1-1-101", amount=3_000_000)
    crm.customers.set_stage(referrer.id, "owner", PROJECT, unit="1-1-101")
    cid = _visited(crm)
    membership(crm).refer(referrer.id, cid, PROJECT)
    crm.customers.set_stage(cid, "buyer", PROJECT, unit="2-1801", amount=4_000_000)
    return referrer.id, cid


def _referral(crm: CRM, referrer: int) -> tuple[int, str | None]:
    from recrm_membership import service as membership

    [made] = membership(crm).show(referrer).referrals_made
    return made.reward_points, made.note


def _net_deal(crm: CRM) -> Decimal:
    return sum((e.amount for e in Commissions(crm).entries()
                if e.kind in ("deal", "clawback")), Decimal("0.00"))


@pytest.mark.recrm_plugins("membership", "channels")
def test_referral_vs_agency_agency_withholds_the_referral_reward(crm: CRM) -> None:
    referrer, _ = _referred_and_signed(crm)
    points, note = _referral(crm, referrer)
    assert points == 0
    assert note and "registered by agency A" in note and "(channels)" in note
    assert _net_deal(crm) == Decimal("60000.00")


@pytest.mark.recrm_plugins("membership", "channels")
@pytest.mark.recrm_settings(channels={"referral_vs_agency": "referral"})
def test_referral_vs_agency_referral_skips_the_deal_commission(crm: CRM) -> None:
    referrer, _ = _referred_and_signed(crm)
    points, note = _referral(crm, referrer)
    assert points > 0 and note is None
    assert _net_deal(crm) == Decimal("0.00")
    [withheld] = [e for e in Commissions(crm).entries() if e.kind == "withheld"]
    assert withheld.amount == Decimal("0.00")
    assert "referral_vs_agency = referral" in (withheld.note or "")


@pytest.mark.recrm_plugins("membership", "channels")
@pytest.mark.recrm_settings(channels={"referral_vs_agency": "both"})
def test_referral_vs_agency_both_pays_both(crm: CRM) -> None:
    referrer, _ = _referred_and_signed(crm)
    points, note = _referral(crm, referrer)
    assert points > 0 and note is None
    assert _net_deal(crm) == Decimal("60000.00")
    assert [e.kind for e in Commissions(crm).entries()] == ["deal"]


def test_partner_api_lists_its_agency_commissions_masked(crm: CRM, api_client: Any) -> None:
    setup_agencies(crm)
    _terms(crm, visit_reward="0", subscription_reward="0")
    cid = _visited(crm)
    crm.customers.set_stage(cid, "buyer", PROJECT, unit="3-1201", amount=1_234_567)
    listed = api_client("partner", staff="a1").get("/v1/channels/commissions")
    assert listed.status_code == 200, listed.text
    [entry] = listed.json()
    assert (entry["kind"], entry["amount"], entry["mobile"]) == ("deal", "18518.51",
                                                                 "138****5678")
    assert api_client("partner", staff="b1").get("/v1/channels/commissions").json() == []
    assert api_client("partner", staff="p9").get("/v1/channels/commissions").status_code == 403


def test_export_lists_and_erase_keeps_the_ledger_without_the_person(crm: CRM) -> None:
    setup_agencies(crm)
    _terms(crm)
    cid = _visited(crm)
    crm.customers.set_stage(cid, "buyer", PROJECT, unit="3-1201", amount=1_000_000)
    exported = crm.privacy.export(cid)["plugins"]["channels"]["registrations"]
    assert [(c["kind"], c["amount"]) for c in exported[0]["commissions"]] == [
        ("visit", "200.00"), ("deal", "15000.00")]
    crm.privacy.erase(cid)
    entries = Commissions(crm).entries()
    assert [(e.kind, e.amount, e.mobile) for e in entries] == [
        ("visit", Decimal("200.00"), None), ("deal", Decimal("15000.00"), None)]
