"""The club's batch paths. The batch hooks ask their first question (who among the
batch's customers is a member; which signings were referred) on the unit of work's
connection: a stage change or an earning interaction that concerns no member, no new
owner and no referral makes no ORM ``Session`` (a step that logs an interaction, a subscription or
a signing, still makes one: the core's follow-up rule reads it through the ORM), and
those that do concern the club behave as before. An expiry run and a bulk award
read and write many members' ledgers at once (``expire_members_in``,
``insert_awards``), deciding what one member at a time decides."""

from __future__ import annotations

import datetime as dt

import pytest
from membership_helpers import T0, club, customer, ledger, owner, sign
from recrm_membership.service import expire_member_in, expire_members_in, insert_awards

from recrm_core import CRM, UnitOfWork

pytestmark = pytest.mark.recrm_plugins("membership")


def test_a_non_members_stage_changes_make_no_session(
    crm: CRM, sessions_made: list[UnitOfWork]
) -> None:
    crm.projects.ensure("XL2", "星珑湾二期")
    c = customer(crm, "13812345678")
    sessions_made.clear()
    crm.customers.set_stage(c.id, "visitor", "XL2")
    # an earning kind, of a non-member
    crm.interactions.log(c.id, {"kind": "event", "channel": "other", "summary": "暖场"})
    assert sessions_made == []
    assert ledger(crm) == []


def test_a_batch_of_non_members_makes_no_session(
    crm: CRM, sessions_made: list[UnitOfWork]
) -> None:
    crm.projects.ensure("XL2", "星珑湾二期")
    ids = [customer(crm, f"1381234567{n}").id for n in range(3)]
    sessions_made.clear()
    crm.customers.set_stages([{"customer_id": cid, "stage": "visitor", "project": "XL2"}
                              for cid in ids])
    assert sessions_made == []


def test_members_and_new_owners_are_still_answered(crm: CRM) -> None:
    # The member found on the connection is then loaded and recounted; the new owner
    # enrolled; the referred signing converts.
    member = owner(crm, "13812345678")
    friend = customer(crm, "13912345678")
    club(crm).refer(member.id, friend.id, "XL2")
    crm.customers.set_stages([
        {"customer_id": member.id, "stage": "buyer", "project": "YH1", "unit": "2-2-202",
         "amount": 2_000_000},
        {"customer_id": friend.id, "stage": "buyer", "project": "XL2", "unit": "3-3-303",
         "amount": 2_500_000},
    ])
    svc = club(crm)
    assert svc.show(member.id).member.contracts == 2
    assert [r.status for r in svc.referrals()] == ["converted"]
    sign(crm, friend.id, "YH1")
    crm.customers.set_stage(friend.id, "owner", "YH1")
    assert svc.show(friend.id).member.status == "active"


def test_a_single_referred_signing_converts(crm: CRM) -> None:
    member = owner(crm, "13812345678")
    friend = customer(crm, "13912345678")
    club(crm).refer(member.id, friend.id, "XL2")
    sign(crm, friend.id, "XL2")
    assert [r.status for r in club(crm).referrals()] == ["converted"]
    assert (member.id, "referral", 500, f"referral:{friend.id}:XL2") in ledger(crm)


def test_insert_awards_takes_keyed_entries_only(crm: CRM) -> None:
    # Two entries without a key would be taken for one key repeated in the batch.
    with crm.unit_of_work() as uow, pytest.raises(ValueError, match="award key"):
        insert_awards(uow.session, [
            {"customer_id": 1, "kind": "adjust", "points": 5, "occurred_at": T0}] * 2)


def test_members_expired_together_as_one_by_one(crm: CRM) -> None:
    """``expire_members_in`` (an expiry run's chunk, one read of the ledgers) decides
    what ``expire_member_in`` decides member by member."""
    svc = club(crm)
    ids = []
    for n, (points, spent) in enumerate([(100, 30), (250, 0), (80, 80)]):
        c = owner(crm, f"1381234567{n}")
        svc.earn(c.id, "gift", f"a{n}", points=points, occurred_at=T0)
        svc.earn(c.id, "gift", f"b{n}", points=40, occurred_at=T0 + dt.timedelta(days=400))
        if spent:
            svc.redeem(c.id, spent, now=T0 + dt.timedelta(days=30))
        ids.append(c.id)
    later = T0 + dt.timedelta(days=800)
    with crm.unit_of_work() as uow:
        one_by_one = [e for cid in ids for e in expire_member_in(uow.session, cid, later,
                                                                 write=False)]
        together = expire_members_in(uow.session, ids, later, write=False)
    assert together == one_by_one
    # the second credits have not expired yet; the third member spent all the first
    assert [(e.customer_id, e.points) for e in together] == [(ids[0], 70), (ids[1], 250)]
