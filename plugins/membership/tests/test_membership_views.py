"""What the club adds to the core's views: timeline entries, segment fields and its
section of ``recrm demo`` (its hook called directly, with a seeded generator)."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest
import recrm_membership
from membership_helpers import club, customer, owner, sign
from recrm_membership import MemberRow
from sqlalchemy import select

from recrm_core import CRM, Actor, DemoSection, SegmentField
from recrm_core.demo import demo_anchor
from recrm_core.testing.clock import morning_and_afternoon, set_clock

SHANGHAI = dt.timezone(dt.timedelta(hours=8))

pytestmark = pytest.mark.recrm_plugins("membership")


def test_timeline_shows_membership_points_tiers_and_referrals(crm: CRM) -> None:
    c = owner(crm, "13812345678")
    friend = customer(crm, "13912345678")
    svc = club(crm)
    svc.earn(c.id, "gift", "g1", points=5000, reason="开盘礼")
    svc.redeem(c.id, 200, reason="物业费抵扣")
    svc.refer(c.id, friend.id, "XL2")
    svc.leave(c.id, reason="搬家")
    timeline = crm.customers.view(c.id).timeline
    ours = [(e.kind, e.title) for e in timeline if e.source == "membership"]
    assert sorted(ours) == sorted([
        ("member_enrol", "joined the club (WK00000001)"),
        ("points_earn", "+5000 points (earn): 开盘礼"),
        ("member_tier", "tier 普通 → 银卡"),
        ("points_redeem", "-200 points (redeem): 物业费抵扣"),
        ("referral", f"referred customer {friend.id} for XL2"),
        ("member_leave", "left the club (WK00000001)"),
    ])
    assert [e.at for e in timeline] == sorted((e.at for e in timeline), reverse=True)
    [tier] = [e for e in timeline if e.kind == "member_tier"]
    assert tier.data == {"old": "普通", "new": "银卡", "reason": "points",
                         "lifetime_points": 5000, "contracts": 1}
    # customers outside the club get no membership entries
    assert [e for e in crm.customers.view(friend.id).timeline if e.source == "membership"] == []


def test_segment_fields(crm: CRM) -> None:
    gold = owner(crm, "13812345678")
    silver = owner(crm, "13912345678", unit="1-1-102")
    former = owner(crm, "13712345678", unit="1-1-103")
    customer(crm, "13612345678")
    svc = club(crm)
    svc.adjust(gold.id, 20000, reason="迁移旧系统积分", actor=Actor(staff_id="it"))
    sign(crm, silver.id, "YH1")  # second contract: silver, +1000 points
    svc.earn(former.id, "event", "e1")
    svc.leave(former.id)

    def count(field: str, op: str, value: object) -> int:
        return crm.segments.count({"field": field, "op": op, "value": value})

    assert count("membership.tier", "eq", "金卡") == 1
    assert count("membership.tier", "eq", "银卡") == 1
    assert count("membership.tier", "is_null", True) == 2  # non-member and former member
    assert count("membership.member", "eq", True) == 2
    assert count("membership.member", "eq", False) == 2
    assert count("membership.points", "gte", 1000) == 2
    assert count("membership.points", "eq", 0) == 1
    assert count("membership.points", "eq", 50) == 1  # leaving keeps the points
    assert count("membership.number", "eq", "WK00000003") == 1
    assert crm.segments.count({"all": [
        {"field": "membership.member", "op": "eq", "value": True},
        {"field": "membership.points", "op": "lt", "value": 5000},
    ]}) == 1


def test_segment_field_declarations() -> None:
    fields: list[SegmentField] = []
    recrm_membership.recrm_segment_fields(register=fields.append)
    assert {f.name: f.type for f in fields} == {
        "membership.member": "bool", "membership.tier": "str",
        "membership.points": "int", "membership.number": "str",
    }


@pytest.mark.recrm_settings(membership={"earn": {"contract": 1000, "event": 50},
                                        "expiry_months": 24})
def test_demo_hook_seeds_the_club_and_reports_it(crm: CRM) -> None:
    ids: list[int] = []
    for i in range(40):
        c = customer(crm, f"1381234{i:04d}", name=f"业主{i}", project="XL2")
        ids.append(c.id)
        if i < 16:  # owners, enrolled by the stage hook
            crm.customers.set_stage(c.id, "buyer", "YH1", unit=f"1-1-{i:02d}01")
            crm.customers.set_stage(c.id, "owner", "YH1", unit=f"1-1-{i:02d}01")
        elif i < 22:  # buyers: some opt in
            crm.customers.set_stage(c.id, "buyer", "YH1", unit=f"2-1-{i:02d}01")
        elif i < 30:
            crm.customers.set_stage(c.id, "visitor", "XL2")
    section = recrm_membership.recrm_demo(crm=crm, rng=random.Random(7), customer_ids=ids,
                                          anchor=demo_anchor(crm))
    assert isinstance(section, DemoSection)
    rows = dict(section.rows)
    report = club(crm).report()
    assert section.title == "membership: owners' club"
    assert int(rows["members"]) == report.members >= 16
    assert rows["points issued"] == str(report.points.issued)
    assert int(rows["points issued"]) >= 16 * 1000  # every owner's contract was credited
    assert int(rows["points redeemed"]) > 0
    assert int(rows["points expired"]) > 0  # the oldest owners' days are past 24 months
    assert rows["referrals converted"].startswith(
        f"{report.referrals.converted} of {report.referrals.made}")
    assert report.referrals.made > 0 and report.referrals.converted > 0
    for tier in ("普通", "银卡", "金卡"):
        assert f"  {tier}" in rows
    # every balance is non-negative and derived from the ledger
    with crm.unit_of_work() as uow:
        members = list(uow.session.scalars(select(MemberRow.customer_id)))
    assert all(club(crm).balance(cid).balance >= 0 for cid in members)


def _demo_rows(path: Path, monkeypatch: pytest.MonkeyPatch, *, seed: int = 3,
               clock: dt.datetime | None = None) -> list[tuple[str, str]]:
    """The demo section (generator seeded with ``seed``) with the clock at ``clock``
    (default: the real clock), for owners who signed at noon on whole days before it,
    as the core's demo dates its history: one of them exactly ``expiry_months`` (24)
    before the clock's day, whose contract points expire at noon of that day."""
    with monkeypatch.context() as patch:
        if clock is not None:
            set_clock(patch, clock, [recrm_membership])
        with CRM(database_url=f"sqlite:///{path}", plugins=["membership"],
                 create_schema=True) as crm:
            anchor = demo_anchor(crm)
            day = anchor.date()
            ids = []
            for i in range(24):
                c = customer(crm, f"1391234{i:04d}", project="XL2")
                ids.append(c.id)
                if i % 2 == 0:
                    signed = dt.date(day.year - 2, day.month, day.day) - dt.timedelta(days=i * 9)
                    noon = dt.datetime.combine(signed, dt.time(12), SHANGHAI)
                    crm.customers.set_stage(c.id, "buyer", "YH1", unit=f"9-{i}",
                                            occurred_at=noon)
                    crm.customers.set_stage(c.id, "owner", "YH1", unit=f"9-{i}",
                                            occurred_at=noon + dt.timedelta(days=1))
            section = recrm_membership.recrm_demo(crm=crm, rng=random.Random(seed),
                                                  customer_ids=ids, anchor=anchor)
            assert isinstance(section, DemoSection)
            return section.rows


def test_demo_is_deterministic_for_a_seed(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    first = _demo_rows(tmp_path / "a.db", monkeypatch)
    assert _demo_rows(tmp_path / "b.db", monkeypatch) == first
    assert int(dict(first)["members"]) >= 12
    assert _demo_rows(tmp_path / "c.db", monkeypatch, seed=4) != first


def test_demo_does_not_depend_on_the_time_of_day(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same seed on the same day: the same section at 09:30 as at 16:10, though a
    contract's points run out at noon of that day."""
    # a fixed day in the past: no check finds it in the future
    morning, afternoon = morning_and_afternoon(dt.date(2026, 6, 15))
    assert _demo_rows(tmp_path / "am.db", monkeypatch, clock=morning) \
        == _demo_rows(tmp_path / "pm.db", monkeypatch, clock=afternoon)
