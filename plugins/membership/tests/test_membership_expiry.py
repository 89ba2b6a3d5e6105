"""Expiry: earned points expire after ``expiry_months``, oldest first, written as
ledger entries by an explicit ``expire(now=...)`` run."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from membership_helpers import T0, club, ledger, owner
from recrm_membership.service import add_months, spendable_in

from recrm_core import CRM, Actor, InvalidInput, Refused

pytestmark = pytest.mark.recrm_plugins("membership")

SHANGHAI = ZoneInfo("Asia/Shanghai")


def months(n: int) -> dt.datetime:
    return add_months(T0, n, SHANGHAI)


def test_add_months_clamps_to_the_end_of_the_month() -> None:
    jan31 = dt.datetime(2024, 1, 31, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai
    assert add_months(jan31, 1, SHANGHAI) == dt.datetime(2024, 2, 29, 2, 0, tzinfo=dt.UTC)
    assert add_months(jan31, 13, SHANGHAI) == dt.datetime(2025, 2, 28, 2, 0, tzinfo=dt.UTC)
    assert add_months(jan31, 24, SHANGHAI) == dt.datetime(2026, 1, 31, 2, 0, tzinfo=dt.UTC)
    # months count in the business time zone: 1 Mar 00:30 Shanghai is still 28 Feb UTC
    late = dt.datetime(2024, 2, 29, 16, 30, tzinfo=dt.UTC)
    assert add_months(late, 1, SHANGHAI) == dt.datetime(2024, 3, 31, 16, 30, tzinfo=dt.UTC)


def test_points_expire_oldest_first(crm: CRM) -> None:
    c = owner(crm, "13812345678")
    svc = club(crm)
    first = svc.earn(c.id, "gift", "a", points=100, occurred_at=T0).entry
    second = svc.earn(c.id, "gift", "b", points=200, occurred_at=months(6)).entry
    assert first is not None and second is not None
    assert first.expires_at == months(24)
    # 150 redeemed: the 100 expiring first are used up, then 50 of the 200
    svc.redeem(c.id, 150, now=months(7))
    nothing = svc.expire(now=months(24))
    assert (nothing.points, nothing.entries) == (0, [])
    result = svc.expire(now=months(30))
    assert (result.members, result.points) == (1, 150)
    [written] = result.entries
    assert (written.customer_id, written.points, written.source_entry_id) == (
        c.id, 150, second.id,
    )
    balance = svc.balance(c.id, now=months(30))
    assert (balance.balance, balance.expired, balance.redeemed, balance.due_to_expire) == (
        0, 150, 150, 0,
    )
    assert ledger(crm)[-1] == (c.id, "expire", -150, None)
    [expiry] = [e for e in svc.ledger(c.id) if e.kind == "expire"]
    assert expiry.occurred_at == months(30)  # when the points actually expired


def test_expiry_is_idempotent_and_can_target_one_member(crm: CRM) -> None:
    a = owner(crm, "13812345678")
    b = owner(crm, "13912345678", unit="1-1-102")
    svc = club(crm)
    svc.earn(a.id, "gift", "x", points=100, occurred_at=T0)
    svc.earn(b.id, "gift", "x", points=70, occurred_at=T0)
    svc.earn(b.id, "gift", "y", points=30, occurred_at=months(20))
    only_a = svc.expire(months(25), customer_id=a.id)
    assert (only_a.members, only_a.points) == (1, 100)
    assert svc.balance(b.id, now=months(25)).due_to_expire == 70
    rest = svc.expire(months(25))
    assert (rest.members, rest.points) == (1, 70)
    assert svc.expire(months(25)).points == 0  # a second run writes nothing
    assert svc.balance(b.id, now=months(25)).balance == 30
    assert svc.balance(b.id, now=months(25)).next_expiry_at == months(44)


def test_expired_points_cannot_be_redeemed(crm: CRM) -> None:
    c = owner(crm, "13812345678")
    svc = club(crm)
    svc.earn(c.id, "gift", "old", points=100, occurred_at=T0)
    svc.earn(c.id, "gift", "new", points=40, occurred_at=months(20))
    with pytest.raises(Refused, match="has 40 points; cannot redeem 100"):
        svc.redeem(c.id, 100, now=months(25))
    done = svc.redeem(c.id, 40, now=months(25))
    assert (done.balance, done.expired_first) == (0, 100)
    with pytest.raises(Refused, match="has 0 points; cannot deduct 1"):
        svc.adjust(c.id, -1, reason="x", actor=Actor(staff_id="kf"))


def test_back_dated_contract_earns_at_its_date(crm: CRM) -> None:
    c = owner(crm, "13812345678")
    crm.customers.set_stage(c.id, "buyer", "YH1", unit="8-1-0301", occurred_at=T0)
    [entry] = club(crm).ledger(c.id)
    assert (entry.points, entry.occurred_at, entry.expires_at) == (1000, T0, months(24))


@pytest.mark.recrm_settings(membership={"expiry_months": 0})
def test_points_can_be_set_never_to_expire(crm: CRM) -> None:
    c = owner(crm, "13812345678")
    svc = club(crm)
    entry = svc.earn(c.id, "gift", "a", points=100, occurred_at=T0).entry
    assert entry is not None and entry.expires_at is None
    assert svc.expire(months(600)).points == 0
    assert svc.balance(c.id).balance == 100


@pytest.mark.recrm_settings(membership={"expiry_months": 12})
def test_expiry_months_come_from_settings(crm: CRM) -> None:
    c = owner(crm, "13812345678")
    entry = club(crm).earn(c.id, "gift", "a", points=100, occurred_at=T0).entry
    assert entry is not None and entry.expires_at == months(12)


def test_expire_needs_an_aware_time(crm: CRM) -> None:
    with pytest.raises(InvalidInput, match="time zone"):
        club(crm).expire(dt.datetime(2030, 1, 1))


def test_spendable_of_many_members_is_what_each_balance_leaves(crm: CRM) -> None:
    a = owner(crm, "13812345678")
    b = owner(crm, "13912345678", unit="1-1-102")
    c = owner(crm, "13712345678", unit="1-1-103")
    svc = club(crm)
    svc.earn(a.id, "gift", "x", points=100, occurred_at=T0)
    svc.earn(a.id, "gift", "y", points=40, occurred_at=months(20))
    svc.redeem(a.id, 30, now=months(21))  # from the 100 expiring first
    svc.earn(b.id, "gift", "x", points=70, occurred_at=T0)
    svc.earn(b.id, "gift", "y", points=30, occurred_at=months(20))
    ids = [a.id, b.id, c.id]
    for now in (months(1), months(25), months(50)):
        with crm.unit_of_work() as uow:
            spendable = spendable_in(uow.session, ids, now)
        expected = {cid: svc.balance(cid, now=now) for cid in ids}
        assert spendable == {cid: x.balance - x.due_to_expire for cid, x in expected.items()}
    with crm.unit_of_work() as uow:
        assert spendable_in(uow.session, [a.id, b.id], months(25))[a.id] == \
            svc.balance(a.id, now=months(25)).balance - 70  # 70 of the 100 are due
