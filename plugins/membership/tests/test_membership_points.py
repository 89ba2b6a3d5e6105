"""The points ledger: earning per interaction kind, one award per event, redeeming
(never negative), adjusting, tiers and their recorded changes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from membership_helpers import club, customer, ledger, owner, sign
from recrm_membership import LedgerRow
from sqlalchemy import select

from recrm_core import CRM, Actor, InvalidInput, NotFound, PluginError, Refused, hookimpl
from recrm_core.testing import RecrmCliRunner

pytestmark = pytest.mark.recrm_plugins("membership")

BOSS = Actor(staff_id="kf.wangli", role="admin")


def test_a_member_earns_for_a_contract(crm: CRM) -> None:
    c = owner(crm, "13812345678")  # enrolled at handover: the XL2 contract came before
    assert ledger(crm) == []
    sign(crm, c.id, "YH1", unit="3-2-601")
    assert ledger(crm) == [(c.id, "earn", 1000, f"contract:{c.id}:YH1/3-2-601")]
    [entry] = club(crm).show(c.id).ledger
    assert (entry.project, entry.reason) == ("YH1", "contract at YH1, unit 3-2-601")
    assert entry.interaction_id is not None


def test_the_same_contract_sent_again_awards_once(crm: CRM) -> None:
    # A sales system re-syncing (or re-importing) the contract logs it again.
    c = owner(crm, "13812345678")
    sign(crm, c.id, "YH1", unit="3-2-601")
    again = {"kind": "contract", "project": "YH1", "data": {"unit": "3-2-601"}}
    crm.interactions.log(c.id, again)
    crm.interactions.log(c.id, again)
    assert [p for _, _, p, _ in ledger(crm)] == [1000]
    # a second unit in the same project is another contract
    crm.interactions.log(c.id, {"kind": "contract", "project": "YH1",
                                "data": {"unit": "3-2-602"}})
    assert club(crm).balance(c.id).balance == 2000


def test_events_award_per_interaction_or_per_event_key(crm: CRM) -> None:
    c = owner(crm, "13812345678")
    crm.interactions.log(c.id, {"kind": "event", "summary": "业主答谢会"})
    crm.interactions.log(c.id, {"kind": "event", "summary": "亲子活动"})
    keyed = {"kind": "event", "data": {"event_key": "2024-中秋家宴"}}
    crm.interactions.log(c.id, keyed)
    crm.interactions.log(c.id, keyed)  # the check-in scanned twice
    crm.interactions.log(c.id, {"kind": "call"})  # not configured: earns nothing
    assert [p for _, _, p, _ in ledger(crm)] == [50, 50, 50]
    # a manual award for the same event key is the same award
    assert club(crm).earn(c.id, "event", "2024-中秋家宴").awarded is False


def test_non_members_earn_nothing(crm: CRM) -> None:
    c = customer(crm, "13812345678")
    sign(crm, c.id, "XL2")
    crm.interactions.log(c.id, {"kind": "event"})
    assert ledger(crm) == []


@pytest.mark.recrm_settings(membership={"earn": {"visit": 10, "event": 0}})
def test_earn_amounts_come_from_settings(crm: CRM) -> None:
    c = customer(crm, "13812345678")
    club(crm).enroll(c.id)
    crm.interactions.log(c.id, {"kind": "visit"})
    crm.interactions.log(c.id, {"kind": "event"})  # 0: earns nothing
    sign(crm, c.id, "XL2")  # contract not configured here
    assert [(k, p) for _, k, p, _ in ledger(crm)] == [("earn", 10)]


def test_a_rolled_back_operation_awards_nothing_and_a_retry_awards_once(
    crm: CRM, register_plugin: Callable[..., str]
) -> None:
    c = owner(crm, "13812345678")

    class Flaky:
        fail = True

        @hookimpl(trylast=True)
        def recrm_interaction_logged(self) -> None:
            if Flaky.fail:
                raise RuntimeError("network glitch")

    register_plugin(Flaky(), name="flaky")
    event = {"kind": "event", "data": {"event_key": "E-1"}}
    with pytest.raises(PluginError, match="flaky"):
        crm.interactions.log(c.id, event)
    assert ledger(crm) == []
    Flaky.fail = False
    crm.interactions.log(c.id, event)
    crm.interactions.log(c.id, event)  # the retry of the retry
    assert ledger(crm) == [(c.id, "earn", 50, f"event:{c.id}:E-1")]


def test_manual_earn_is_keyed_by_the_event(crm: CRM) -> None:
    c = owner(crm, "13812345678")
    svc = club(crm)
    first = svc.earn(c.id, "event", "owners-day", reason="业主开放日")
    assert first.awarded and first.balance == 50
    assert first.entry is not None and first.entry.event_key == f"event:{c.id}:owners-day"
    again = svc.earn(c.id, "event", "owners-day", points=999)
    assert (again.awarded, again.balance, again.entry) == (False, 50, first.entry)
    bonus = svc.earn(c.id, "birthday", "2025", points=88, actor=BOSS)
    assert bonus.awarded and bonus.balance == 138
    assert bonus.entry is not None and bonus.entry.actor_staff == "kf.wangli"


def test_earn_rejects_bad_values(crm: CRM) -> None:
    c = owner(crm, "13812345678")
    svc = club(crm)
    with pytest.raises(InvalidInput, match="no earn amount for 'birthday'"):
        svc.earn(c.id, "birthday", "2025")
    with pytest.raises(InvalidInput, match="points must be positive"):
        svc.earn(c.id, "event", "x", points=0)
    with pytest.raises(InvalidInput, match="'referral' awards are made by the club itself"):
        svc.earn(c.id, "referral", "XL2", points=500)
    with pytest.raises(InvalidInput, match="ref is empty"):
        svc.earn(c.id, "event", "  ")
    other = customer(crm, "13912345678")
    with pytest.raises(NotFound, match="not a member"):
        svc.earn(other.id, "event", "x")


def test_redeeming_more_than_the_balance_is_refused(crm: CRM) -> None:
    c = owner(crm, "13812345678")
    svc = club(crm)
    svc.earn(c.id, "gift", "g1", points=500)
    with pytest.raises(Refused, match="has 500 points; cannot redeem 501"):
        svc.redeem(c.id, 501)
    done = svc.redeem(c.id, 300, reason="物业费抵扣")
    assert (done.redeemed, done.balance, done.entry.points) == (True, 200, -300)
    assert svc.redeem(c.id, 200).balance == 0
    with pytest.raises(Refused, match="has 0 points"):
        svc.redeem(c.id, 1)
    with pytest.raises(InvalidInput, match="positive"):
        svc.redeem(c.id, -5)
    assert svc.balance(c.id).balance == 0
    assert [p for _, _, p, _ in ledger(crm)] == [500, -300, -200]


def test_a_redemptions_entry_is_the_one_the_ledger_reads(crm: CRM) -> None:
    # The entry is built from what was written, not read back: it must be what a
    # read gives, the business-time ``now`` in UTC, key, actor and all.
    c = owner(crm, "13812345678")
    svc = club(crm)
    svc.earn(c.id, "gift", "g1", points=500)
    at = dt.datetime(2026, 3, 1, 18, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    done = svc.redeem(c.id, 120, reason="礼品兑换", ref="order-9", now=at,
                      actor=Actor(staff_id="li.na", role="manager"))
    assert done.entry == {e.id: e for e in svc.ledger(c.id)}[done.entry.id]
    assert done.entry.occurred_at == at and done.entry.occurred_at.utcoffset() == dt.timedelta(0)
    assert (done.entry.event_key, done.entry.actor_staff) == (f"redeem:{c.id}:order-9", "li.na")


def test_a_retried_redemption_deducts_once(crm: CRM) -> None:
    c = owner(crm, "13812345678")
    svc = club(crm)
    svc.earn(c.id, "gift", "g1", points=500)
    first = svc.redeem(c.id, 400, ref="ORDER-7")
    retry = svc.redeem(c.id, 400, ref="ORDER-7")  # would be refused if it deducted again
    assert (first.redeemed, retry.redeemed, retry.balance) == (True, False, 100)
    assert retry.entry == first.entry


def test_adjust_needs_a_reason_and_an_actor_and_cannot_go_negative(crm: CRM) -> None:
    c = owner(crm, "13812345678")
    svc = club(crm)
    entry = svc.adjust(c.id, 300, reason="补录线下活动积分", actor=BOSS)
    assert (entry.kind, entry.points, entry.reason, entry.actor_staff) == (
        "adjust", 300, "补录线下活动积分", "kf.wangli",
    )
    with pytest.raises(Refused, match="has 300 points; cannot deduct 301"):
        svc.adjust(c.id, -301, reason="误发", actor=BOSS)
    assert svc.adjust(c.id, -300, reason="误发", actor=BOSS).points == -300
    with pytest.raises(InvalidInput, match="reason is empty"):
        svc.adjust(c.id, 10, reason=" ", actor=BOSS)
    with pytest.raises(InvalidInput, match="needs the staff"):
        svc.adjust(c.id, 10, reason="x", actor=None)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="non-zero"):
        svc.adjust(c.id, 0, reason="x", actor=BOSS)
    assert svc.balance(c.id).balance == 0


@pytest.mark.recrm_settings(membership={"tiers": [
    {"name": "普通"},
    {"name": "银卡", "min_points": 1000, "min_contracts": 2},
    {"name": "金卡", "min_points": 3000, "min_contracts": 3},
]})
def test_tiers_follow_points_and_contracts_and_every_change_is_recorded(crm: CRM) -> None:
    c = owner(crm, "13812345678")
    svc = club(crm)
    assert svc.get(c.id).tier == "普通"
    svc.earn(c.id, "gift", "g1", points=999)
    assert svc.get(c.id).tier == "普通"
    svc.earn(c.id, "gift", "g2", points=1)
    assert svc.get(c.id).tier == "银卡"  # by points
    svc.redeem(c.id, 1000)
    assert svc.get(c.id).tier == "银卡"  # lifetime points: spending does not demote
    sign(crm, c.id, "YH1")  # +1000 for the contract, and a second contract
    sign(crm, c.id, "ZJ3")  # third contract: gold by contracts
    member = svc.get(c.id)
    assert (member.tier, member.contracts, member.lifetime_points) == ("金卡", 3, 3000)
    svc.adjust(c.id, -1000, reason="退房扣回", actor=BOSS)
    changes = [(t.old_tier, t.new_tier, t.reason, t.lifetime_points, t.contracts)
               for t in svc.show(c.id).tier_changes]
    assert changes == [
        (None, "普通", "enrol", 0, 1),
        ("普通", "银卡", "points", 1000, 1),
        ("银卡", "金卡", "points", 3000, 2),
        # the third contract and a negative adjustment keep gold (3 contracts)
    ]
    crm.customers.set_stage(c.id, "visitor", "ZJ3", force=True)  # the contract was undone
    assert svc.get(c.id).tier == "银卡"
    assert svc.show(c.id).tier_changes[-1].reason == "contracts"


def test_the_ledger_is_append_only(crm: CRM) -> None:
    c = owner(crm, "13812345678")
    svc = club(crm)
    svc.earn(c.id, "gift", "g1", points=500)
    svc.redeem(c.id, 100)
    with crm.unit_of_work() as uow:
        before = [(r.id, r.points, r.kind, r.recorded_at)
                  for r in uow.session.scalars(select(LedgerRow).order_by(LedgerRow.id))]
    svc.adjust(c.id, -50, reason="x", actor=BOSS)
    svc.earn(c.id, "gift", "g2", points=20)
    with crm.unit_of_work() as uow:
        after = [(r.id, r.points, r.kind, r.recorded_at)
                 for r in uow.session.scalars(select(LedgerRow).order_by(LedgerRow.id))]
    assert after[: len(before)] == before and len(after) == len(before) + 2
    assert svc.balance(c.id).balance == sum(p for _, p, _, _ in after) == 370


def test_an_invisible_character_does_not_make_another_event(crm: CRM) -> None:
    # "owners'\u200bday" prints like "owners'day": it is the same event, awarded once
    c = owner(crm, "13812345678")
    svc = club(crm)
    assert svc.earn(c.id, "event", "owners'day", points=10).awarded
    assert not svc.earn(c.id, "ev\u200bent", "owners'\u200bday", points=10).awarded
    assert not svc.earn(c.id, "event", "\u202eowners'day", points=10).awarded
    crm.interactions.log(c.id, {"kind": "event", "data": {"event_key": "gala\u200b"}})
    crm.interactions.log(c.id, {"kind": "event", "data": {"event_key": "\ufeffgala"}})
    assert [key for _, _, _, key in ledger(crm)] == [
        f"event:{c.id}:owners'day", f"event:{c.id}:gala"]
    with pytest.raises(InvalidInput, match="ref is empty"):
        svc.earn(c.id, "event", "\u200b", points=10)


def test_a_control_character_in_an_event_key_is_refused(
        crm: CRM, cli_runner: RecrmCliRunner) -> None:
    """An event kind or reference is a key, cleaned by the core's rule for codes: an
    escape sequence is refused with its code point (it would repaint the terminal of
    whoever lists the ledger), nothing awarded."""
    c = owner(crm, "13812345678")
    svc = club(crm)
    with pytest.raises(InvalidInput, match=r"ref contains a control character \(U\+001B\)"):
        svc.earn(c.id, "event", "gala\x1b[31m2024", points=10)
    with pytest.raises(InvalidInput, match=r"kind contains a control character \(U\+0007\)"):
        svc.earn(c.id, "ev\x07ent", "gala", points=10)
    result = cli_runner.invoke("member", "earn", str(c.id), "--kind", "event",
                               "--ref", "gala\x1b[31m2024", "--points", "10")
    assert result.exit_code == 2, result.stderr
    assert "U+001B" in result.stderr and "\x1b" not in result.stderr
    assert ledger(crm) == []
