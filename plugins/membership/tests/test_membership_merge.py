"""Merging two customers: the survivor keeps its member number, the duplicate's
ledger moves over, and each award key is counted exactly once."""

from __future__ import annotations

import pytest
from membership_helpers import club, customer, ledger, owner, sign
from recrm_membership import MemberRow, ReferralRow
from sqlalchemy import select

from recrm_core import CRM

pytestmark = pytest.mark.recrm_plugins("membership")


def test_survivor_keeps_its_number_and_gets_the_duplicates_points(crm: CRM) -> None:
    a = owner(crm, "13812345678", name="王伟")
    b = owner(crm, "13912345678", unit="1-1-102")  # the same person, typed twice
    svc = club(crm)
    svc.earn(a.id, "gift", "a1", points=300)
    svc.earn(b.id, "gift", "b1", points=200)
    svc.redeem(b.id, 50)
    crm.customers.merge(a.id, b.id)
    member = svc.get(a.id)
    assert (member.number, member.status, member.balance, member.lifetime_points) == (
        "WK00000001", "active", 450, 500,
    )
    assert member.contracts == 2  # contracts count units: 1-1-101 and 1-1-102 at XL2
    assert {cid for cid, _, _, _ in ledger(crm)} == {a.id}
    # the duplicate id still resolves to the survivor's membership
    assert svc.get(b.id).number == "WK00000001"
    with crm.unit_of_work() as uow:
        gone = uow.session.scalars(select(MemberRow).where(MemberRow.customer_id == b.id)).one()
        assert (gone.number, gone.status, gone.merged_into) == ("WK00000002", "merged", a.id)
    merge_events = [e for e in svc.show(a.id).events if e.action == "merge"]
    assert [e.note for e in merge_events] == [
        f"member WK00000002 (customer {b.id}) merged into WK00000001"
    ]
    assert crm.segments.count({"field": "membership.member", "op": "eq", "value": True}) == 1


def test_a_non_member_survivor_takes_over_the_membership(crm: CRM) -> None:
    a = customer(crm, "13812345678")
    b = owner(crm, "13912345678")
    club(crm).earn(b.id, "gift", "b1", points=200)
    crm.customers.merge(a.id, b.id)
    member = club(crm).get(a.id)
    assert (member.customer_id, member.number, member.balance) == (a.id, "WK00000001", 200)


def test_the_same_award_under_both_records_counts_once(crm: CRM) -> None:
    # Both records were members and the same contract was recorded under each.
    a = owner(crm, "13812345678")
    b = owner(crm, "13912345678", project="YH1")
    sign(crm, a.id, "ZJ3", unit="6-2-1101")
    sign(crm, b.id, "ZJ3", unit="6-2-1101")
    club(crm).earn(b.id, "event", "owners-day")
    assert club(crm).balance(a.id).balance == 1000
    crm.customers.merge(a.id, b.id)
    keys = [key for _, _, _, key in ledger(crm) if key is not None]
    assert sorted(keys) == sorted([f"contract:{a.id}:ZJ3/6-2-1101", f"event:{a.id}:owners-day"])
    member = club(crm).get(a.id)
    assert (member.balance, member.lifetime_points) == (1050, 1050)
    entries = club(crm).ledger(a.id)
    [twin] = [e for e in entries if e.duplicate_of is not None]
    [reversal] = [e for e in entries if e.kind == "reversal"]
    assert (twin.points, reversal.points, reversal.source_entry_id) == (1000, -1000, twin.id)
    # merging is not a new event: the award keys stay unique afterwards too
    crm.interactions.log(a.id, {"kind": "contract", "project": "ZJ3",
                                "data": {"unit": "6-2-1101"}})
    assert club(crm).balance(a.id).balance == 1050


def test_a_twin_award_already_spent_never_makes_the_balance_negative(crm: CRM) -> None:
    a = owner(crm, "13812345678")
    b = owner(crm, "13912345678", project="YH1")
    club(crm).earn(a.id, "event", "E-1", points=300)
    club(crm).earn(b.id, "event", "E-1", points=300)
    club(crm).redeem(a.id, 300)
    club(crm).redeem(b.id, 200)
    crm.customers.merge(a.id, b.id)
    member = club(crm).get(a.id)
    assert (member.balance, member.lifetime_points) == (0, 300)
    [reversal] = [e for e in club(crm).ledger(a.id) if e.kind == "reversal"]
    assert reversal.points == -100
    assert reversal.reason is not None and "200 already spent" in reversal.reason


def test_referrals_follow_the_merge(crm: CRM) -> None:
    a = owner(crm, "13812345678")
    b = owner(crm, "13912345678", project="YH1")
    friend = customer(crm, "13712345678")
    friend_again = customer(crm, "13612345678")
    svc = club(crm)
    svc.refer(a.id, friend.id, "XL2")
    svc.refer(b.id, friend_again.id, "XL2")  # the same friend, typed twice
    sign(crm, friend.id, "XL2", unit="3-1-0101")
    sign(crm, friend_again.id, "XL2", unit="3-1-0101")
    assert (svc.balance(a.id).balance, svc.balance(b.id).balance) == (500, 500)
    crm.customers.merge(friend.id, friend_again.id)
    # one referral per referred customer and project: the survivor's stands
    statuses = sorted((r.referrer_id, r.referred_id, r.status) for r in svc.referrals())
    assert statuses == sorted([(a.id, friend.id, "converted"), (b.id, friend.id, "superseded")])
    assert (svc.balance(a.id).balance, svc.balance(b.id).balance) == (500, 0)
    report = svc.report()
    assert (report.referrals.made, report.referrals.converted) == (1, 1)
    # and a merge of the two referrers moves what they made
    crm.customers.merge(a.id, b.id)
    with crm.unit_of_work() as uow:
        referrers = set(uow.session.scalars(select(ReferralRow.referrer_id)))
    assert referrers == {a.id}
    assert svc.balance(a.id).balance == 500


def test_merging_referrer_and_referred_voids_the_referral(crm: CRM) -> None:
    a = owner(crm, "13812345678")
    b = customer(crm, "13912345678")
    club(crm).refer(a.id, b.id, "XL2")
    crm.customers.merge(a.id, b.id)
    [referral] = club(crm).referrals()
    assert (referral.referrer_id, referral.referred_id, referral.status) == (
        a.id, a.id, "superseded",
    )
