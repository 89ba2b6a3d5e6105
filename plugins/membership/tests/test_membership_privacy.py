"""Privacy requests: the club's export of one member, and their erasure — nothing
about them left in any ``membership_*`` table, the club's figures unchanged, the
other side of a referral untouched."""

from __future__ import annotations

import json
from typing import Any

import pytest
from membership_helpers import club, customer, owner, sign
from recrm_membership import (
    LedgerRow,
    MemberEventRow,
    MemberRow,
    ReferralRow,
    TierChangeRow,
    recrm_customer_erase,
    recrm_customer_export,
)
from sqlalchemy import select

from recrm_core import CRM, Actor, ErasureStep

pytestmark = pytest.mark.recrm_plugins("membership")

MOBILE = "13812345678"
NAME = "王伟"
EMAIL = "wangwei@example.com"
TABLES = (MemberRow, LedgerRow, TierChangeRow, MemberEventRow, ReferralRow)
STAFF = Actor(staff_id="kf.li", role="service")


def club_with_a_member(crm: CRM) -> dict[str, int]:
    """王伟 (an owner, member) with free text about him everywhere, a friend he referred
    (who signed: his reward), a member who referred him, and another member whose
    ledger a consultant wrote his mobile into."""
    wang = owner(crm, MOBILE, name=NAME, email=EMAIL)
    other = owner(crm, "13900001111", project="YH1", name="李娜")
    friend = customer(crm, "13700002222", name="赵敏")
    svc = club(crm)
    svc.earn(wang.id, "event", f"{NAME} 的生日 {MOBILE}", points=300,
             reason=f"{NAME} 生日礼物, 电话 138-1234-5678")
    svc.redeem(wang.id, 100, reason=f"{NAME} 物业费抵扣", ref="ORDER-1")
    svc.adjust(wang.id, 50, reason=f"补发 {EMAIL}", actor=STAFF)
    svc.leave(wang.id, reason=f"{NAME} 搬走了")
    svc.enroll(wang.id, note=f"{NAME} 回来了")
    svc.refer(wang.id, friend.id, "XL2")
    sign(crm, friend.id, "XL2", unit="5-1-0901")  # wang's reward
    crm.projects.ensure("ZJ3")
    svc.refer(other.id, wang.id, "ZJ3")
    sign(crm, wang.id, "ZJ3", unit="6-2-1101")  # other's reward for referring wang
    svc.adjust(other.id, 20, reason="介绍朋友 138 1234 5678 的礼品", actor=STAFF)
    return {"wang": wang.id, "other": other.id, "friend": friend.id}


def rows_of(crm: CRM) -> list[dict[str, Any]]:
    with crm.unit_of_work() as uow:
        return [
            {"table": t.__tablename__, **{c.key: getattr(r, c.key) for c in t.__table__.c}}
            for t in TABLES for r in uow.session.scalars(select(t)).all()
        ]


def holds_person(row: dict[str, Any]) -> bool:
    text = json.dumps(row, default=str, ensure_ascii=False)
    digits = "".join(ch for ch in text if ch.isdigit())
    return MOBILE in digits or EMAIL in text or NAME in text


def erase(crm: CRM, customer_id: int, merged_ids: list[int] | None = None) -> list[ErasureStep]:
    """Call the hook as the core's erasure does: in its unit of work, committed."""
    with crm.unit_of_work() as uow:
        person = crm.customers.get_in(uow, customer_id)
        steps = recrm_customer_erase(uow=uow, customer=person, merged_ids=merged_ids or [])
    assert steps is not None
    return steps


def test_hook_recrm_customer_export(crm: CRM) -> None:
    ids = club_with_a_member(crm)
    stranger = customer(crm, "13600003333")
    with crm.unit_of_work(readonly=True) as uow:
        wang = crm.customers.get_in(uow, ids["wang"])
        direct = recrm_customer_export(uow=uow, customer=wang)
        through = crm.hooks.customer_export(uow, wang)
        # someone the club never knew: no section at all
        assert crm.hooks.customer_export(uow, crm.customers.get_in(uow, stranger.id)) == {}
    assert through == {"membership": direct}
    assert direct is not None
    assert json.loads(json.dumps(direct)) == direct  # JSON as it is: dates as ISO text
    member = direct["member"]
    # two contracts (XL2, ZJ3) make a 银卡 member
    assert (member["number"], member["status"], member["tier"]) == ("WK00000001", "active",
                                                                    "银卡")
    assert member["balance"] == direct["balance"]["balance"] == club(crm).balance(
        ids["wang"]).balance
    assert member["enrolled_at"].endswith("+00:00")
    kinds = [e["kind"] for e in direct["ledger"]]
    assert {"earn", "redeem", "adjust", "referral"} <= set(kinds)
    assert any(NAME in (e["reason"] or "") for e in direct["ledger"])
    assert [e["action"] for e in direct["events"]] == ["enrol", "leave", "rejoin"]
    assert direct["tier_changes"][0]["reason"] == "enrol"
    [made] = direct["referrals_made"]
    assert (made["project"], made["status"], made["reward_points"]) == ("XL2", "converted", 500)
    [received] = direct["referred_by"]
    assert (received["project"], received["status"]) == ("ZJ3", "converted")
    # the other people of a referral are theirs, not this person's
    assert set(made) == {"id", "project", "status", "created_at", "converted_at",
                         "reward_points", "note"}
    assert set(received) == {"id", "project", "status", "created_at", "converted_at"}


def test_hook_recrm_customer_erase(crm: CRM) -> None:
    ids = club_with_a_member(crm)
    svc = club(crm)
    report_before = svc.report()
    other_before = svc.show(ids["other"])
    assert any(holds_person(r) for r in rows_of(crm))

    with crm.unit_of_work() as uow:
        wang = crm.customers.get_in(uow, ids["wang"])
        direct = recrm_customer_erase(uow=uow, customer=wang, merged_ids=[])
        # a second round through the facade finds nothing more to delete
        [(plugin, again)] = crm.hooks.customer_erase(uow, wang, [])
    assert plugin == "membership"
    assert direct is not None
    steps = {s.table: s for s in direct}
    assert set(steps) == {"membership_members", "membership_tier_changes",
                          "membership_events", "membership_ledger", "membership_referrals"}
    assert steps["membership_members"].deleted == 1
    assert steps["membership_events"].deleted == 3
    assert steps["membership_tier_changes"].deleted >= 1
    assert steps["membership_ledger"].anonymised >= 6 and steps["membership_ledger"].basis
    assert steps["membership_referrals"].anonymised == 2
    assert steps["membership_referrals"].basis
    assert sum(s.deleted for s in again) == 0

    # nothing in any membership table holds his mobile, name or email, nor his notes
    assert [r for r in rows_of(crm) if holds_person(r)] == []
    with crm.unit_of_work() as uow:
        s = uow.session
        assert s.scalars(select(MemberRow).where(MemberRow.customer_id == ids["wang"])).all() \
            == []
        for table in (TierChangeRow, MemberEventRow):
            assert s.scalars(select(table).where(table.customer_id == ids["wang"])).all() == []
        kept = s.scalars(select(LedgerRow).where(LedgerRow.customer_id == ids["wang"])).all()
        assert kept and all(r.reason is None and r.event_ref is None
                            and r.event_subject is None and r.interaction_id is None
                            for r in kept)
        notes = s.scalars(select(ReferralRow.note)).all()
        assert all(n is None for n in notes)

    # the club's figures are unchanged: points add up, referrals still count
    report_after = svc.report()
    assert report_after.points == report_before.points
    assert report_after.referrals == report_before.referrals
    assert report_after.referrals_by_project == report_before.referrals_by_project
    assert report_after.members == report_before.members - 1
    # ... but the erased referrer has no line of his own
    assert ids["wang"] not in {m.customer_id for m in report_after.referrals_by_member}
    assert ids["other"] in {m.customer_id for m in report_after.referrals_by_member}

    # the other member keeps his reward, his referral and his entries (the one that
    # named wang's mobile redacted)
    other_after = svc.show(ids["other"])
    assert other_after.balance.balance == other_before.balance.balance
    assert [e.points for e in other_after.ledger] == [e.points for e in other_before.ledger]
    assert "(redacted)" in [e.reason for e in other_after.ledger]
    [reward] = [e for e in other_after.ledger if e.kind == "referral"]
    assert reward.reason == "referred customer signed at ZJ3"
    [referral] = other_after.referrals_made
    assert (referral.status, referral.reward_points) == ("converted", 500)
    # the friend wang referred keeps the record of having been referred
    assert [r.project for r in svc.referrals() if r.referred_id == ids["friend"]] == ["XL2"]


def test_erase_covers_a_merged_away_membership(crm: CRM) -> None:
    a = owner(crm, MOBILE, name=NAME)
    b = owner(crm, "13912340000", project="YH1", name=NAME)  # the same person, twice
    club(crm).earn(b.id, "gift", "b1", points=200, reason=f"{NAME} 的礼物")
    crm.customers.merge(a.id, b.id)
    before = club(crm).report().points
    steps = {s.table: s for s in erase(crm, a.id, [b.id])}
    assert steps["membership_members"].deleted == 2  # the survivor's and the merged row
    with crm.unit_of_work() as uow:
        assert uow.session.scalars(select(MemberRow)).all() == []
    assert [r for r in rows_of(crm) if holds_person(r)] == []
    assert club(crm).report().points == before


def test_erasing_someone_the_club_never_knew_changes_nothing(crm: CRM) -> None:
    ids = club_with_a_member(crm)
    rows = rows_of(crm)
    stranger = customer(crm, "13600003333", name="陈晨")
    steps = erase(crm, stranger.id)
    assert all(s.deleted == s.anonymised == s.retained == 0 for s in steps)
    assert rows_of(crm) == rows
    assert club(crm).get(ids["wang"]).status == "active"


def test_erasure_through_the_core_passes_its_scan(crm: CRM) -> None:
    """End to end: ``crm.privacy.erase`` runs the core's erasure, this hook, and the scan
    of every column for the person's values (any hit would roll it all back)."""
    ids = club_with_a_member(crm)
    points = club(crm).report().points
    dry = crm.privacy.erase(ids["wang"], dry_run=True)
    assert dry.verified and dry.dry_run
    assert club(crm).get(ids["wang"]).number == "WK00000001"  # a dry run rolls back
    done = crm.privacy.erase(ids["wang"], reason="PIPL Art. 47 request")
    assert done.verified
    tables = {s["table"] for s in done.steps if s["source"] == "membership"}
    assert "membership_ledger" in tables
    assert [r for r in rows_of(crm) if holds_person(r)] == []
    assert club(crm).report().points == points
