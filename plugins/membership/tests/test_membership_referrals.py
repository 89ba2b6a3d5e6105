"""Referrals (老带新): the reward fires once, on the referred customer's first
contract for the project; refusals say why; the report counts conversions."""

from __future__ import annotations

import pytest
from membership_helpers import T0, club, customer, ledger, owner, sign

from recrm_core import CRM, InvalidInput, NotFound, Refused

pytestmark = pytest.mark.recrm_plugins("membership")


def test_reward_fires_once_when_the_referred_customer_signs(crm: CRM) -> None:
    referrer = owner(crm, "13812345678", name="王伟")
    friend = customer(crm, "13912345678", project="XL2")
    svc = club(crm)
    referral = svc.refer(referrer.id, friend.id, "XL2")
    assert (referral.status, referral.reward_points) == ("pending", 0)
    crm.customers.set_stage(friend.id, "visitor", "XL2")
    crm.customers.set_stage(friend.id, "subscriber", "XL2", unit="5-1-0901")
    assert ledger(crm) == []  # a deposit is not a contract
    sign(crm, friend.id, "XL2", unit="5-1-0901")
    assert ledger(crm) == [(referrer.id, "referral", 500, f"referral:{friend.id}:XL2")]
    [done] = svc.referrals()
    assert (done.status, done.reward_points) == ("converted", 500)
    assert done.converted_at is not None
    crm.customers.set_stage(friend.id, "owner", "XL2")
    # undone and signed again: still the first contract's reward only
    crm.customers.set_stage(friend.id, "visitor", "XL2", force=True)
    sign(crm, friend.id, "XL2", unit="5-1-0902")
    assert svc.balance(referrer.id).balance == 500
    assert svc.show(referrer.id).referrals_made == [svc.referrals()[0]]
    assert svc.show(friend.id).referred_by[0].referrer_id == referrer.id


def test_a_back_dated_contract_converts_and_rewards_at_its_date(crm: CRM) -> None:
    referrer = owner(crm, "13812345678")
    friend = customer(crm, "13912345678")
    svc = club(crm)
    svc.refer(referrer.id, friend.id, "XL2")
    crm.customers.set_stage(friend.id, "buyer", "XL2", unit="5-1-0901", occurred_at=T0)
    [done] = svc.referrals()
    assert (done.status, done.converted_at) == ("converted", T0)
    rewards = [e for e in svc.show(referrer.id).ledger if e.kind == "referral"]
    assert [(e.points, e.occurred_at) for e in rewards] == [(500, T0)]


def test_signing_at_another_project_does_not_convert(crm: CRM) -> None:
    referrer = owner(crm, "13812345678")
    friend = customer(crm, "13912345678")
    crm.projects.ensure("YH1")
    club(crm).refer(referrer.id, friend.id, "YH1")
    sign(crm, friend.id, "XL2")
    assert club(crm).referrals()[0].status == "pending"
    crm.customers.set_stage(friend.id, "owner", "YH1")  # straight to owner also counts
    assert club(crm).referrals()[0].status == "converted"
    assert club(crm).balance(referrer.id).balance == 500


def test_refusals_say_why(crm: CRM) -> None:
    member = owner(crm, "13812345678")
    other_owner = owner(crm, "13912345678", unit="1-1-102")
    buyer = customer(crm, "13712345678")
    sign(crm, buyer.id, "XL2")
    prospect = customer(crm, "13612345678")
    stranger = customer(crm, "13512345678")
    svc = club(crm)
    with pytest.raises(Refused, match=f"customer {member.id} cannot refer themselves"):
        svc.refer(member.id, member.id, "XL2")
    with pytest.raises(Refused, match=f"customer {other_owner.id} already owns at XL2"):
        svc.refer(member.id, other_owner.id, "XL2")
    with pytest.raises(Refused, match=f"customer {buyer.id} already signed a contract at XL2"):
        svc.refer(member.id, buyer.id, "XL2")
    with pytest.raises(NotFound, match=f"customer {stranger.id} is not a member"):
        svc.refer(stranger.id, prospect.id, "XL2")
    with pytest.raises(NotFound, match="no such project 'NOPE'"):
        svc.refer(member.id, prospect.id, "NOPE")
    with pytest.raises(NotFound, match="no customer 999"):
        svc.refer(member.id, 999, "XL2")
    with pytest.raises(InvalidInput, match="project is empty"):
        svc.refer(member.id, prospect.id, " ")
    svc.refer(member.id, prospect.id, "XL2")
    with pytest.raises(Refused, match=f"already referred for XL2 by customer {member.id}"):
        svc.refer(other_owner.id, prospect.id, "XL2")
    # an owner elsewhere may be referred for this project
    crm.projects.ensure("YH1")
    assert svc.refer(member.id, other_owner.id, "YH1").status == "pending"
    svc.leave(other_owner.id)
    with pytest.raises(Refused, match="has left the club and cannot refer"):
        svc.refer(other_owner.id, stranger.id, "XL2")


def test_a_referrer_who_left_gets_no_reward(crm: CRM) -> None:
    referrer = owner(crm, "13812345678")
    friend = customer(crm, "13912345678")
    svc = club(crm)
    svc.refer(referrer.id, friend.id, "XL2")
    svc.leave(referrer.id)
    sign(crm, friend.id, "XL2")
    [referral] = svc.referrals()
    assert (referral.status, referral.reward_points) == ("converted", 0)
    assert ledger(crm) == []


@pytest.mark.recrm_settings(membership={"referral_reward": 800})
def test_report_counts_referrals_per_member_and_project(crm: CRM) -> None:
    a = owner(crm, "13812345678", name="王伟")
    b = owner(crm, "13912345678", name="李娜", unit="1-1-102")
    crm.projects.ensure("YH1")
    friends = [customer(crm, f"1371234560{i}").id for i in range(5)]
    svc = club(crm)
    svc.refer(a.id, friends[0], "XL2")
    svc.refer(a.id, friends[1], "XL2")
    svc.refer(a.id, friends[2], "YH1")
    svc.refer(b.id, friends[3], "XL2")
    svc.refer(b.id, friends[4], "YH1")
    sign(crm, friends[0], "XL2")
    sign(crm, friends[2], "YH1")
    sign(crm, friends[3], "XL2")
    report = svc.report()
    assert (report.referrals.made, report.referrals.converted) == (5, 3)
    assert report.referrals.conversion_rate == 0.6
    by_member = {(r.customer_id, r.number, r.name): (r.made, r.converted, r.conversion_rate)
                 for r in report.referrals_by_member}
    assert by_member == {
        (a.id, "WK00000001", "王伟"): (3, 2, 0.6667),
        (b.id, "WK00000002", "李娜"): (2, 1, 0.5),
    }
    by_project = {r.project: (r.made, r.converted, r.conversion_rate)
                  for r in report.referrals_by_project}
    assert by_project == {"XL2": (3, 2, 0.6667), "YH1": (2, 1, 0.5)}
    assert (report.points.issued, report.points.outstanding) == (2400, 2400)
    assert report.members_by_tier == {"普通": 2, "银卡": 0, "金卡": 0}
    narrowed = svc.report(project="YH1")
    assert (narrowed.project, narrowed.referrals.made, narrowed.referrals.converted) == (
        "YH1", 2, 1,
    )
    assert {r.customer_id: r.made for r in narrowed.referrals_by_member} == {a.id: 1, b.id: 1}
    crm.projects.ensure("ZZ9")  # a project nobody was referred for
    empty = svc.report(project="ZZ9")
    assert (empty.referrals.made, empty.referrals.conversion_rate) == (0, None)
    with pytest.raises(NotFound, match="no such project 'ZZ8'"):
        svc.report(project="ZZ8")
