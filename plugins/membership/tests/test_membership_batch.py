"""The batch hooks (``recrm_stages_changed``, ``recrm_interactions_logged``) give what
the same changes give one operation at a time: the same ledger, tiers, contracts,
tier history and referral conversions.

Each test plays one script twice on the same database, with fresh customers each
time: once as separate operations (each change a batch of one), once inside one
unit of work with ``crm.hooks.batched`` (one batch of everything, interactions
delivered before stage changes), and compares what the club holds about each role.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from membership_helpers import club, customer, owner
from recrm_membership import (
    LedgerRow,
    MemberEventRow,
    MemberRow,
    ReferralRow,
    TierChangeRow,
    recrm_interactions_logged,
)
from recrm_membership.service import (
    AwardIn,
    Joining,
    award_in,
    award_many_in,
    enrol_in,
    enrol_many_in,
    insert_members,
    lock_member,
)
from sqlalchemy import select

from recrm_core import CRM

pytestmark = [
    pytest.mark.recrm_plugins("membership"),
    pytest.mark.recrm_settings(membership={
        "earn": {"contract": 1000, "event": 50, "visit": 5},
        "tiers": [{"name": "普通"}, {"name": "银卡", "min_points": 1500},
                  {"name": "金卡", "min_contracts": 2}],
    }),
]

#: (role, stage, project, unit) or (role, "log", kind, ref): the changes of a script
Step = tuple[str, str, str, str]


def play(crm: CRM, roles: dict[str, int], steps: list[Step], *, batched: bool) -> None:
    def apply(uow: Any, step: Step) -> None:
        role, what, arg, unit = step
        if what == "log":
            crm.interactions.log_in(uow, roles[role], kind=arg,
                                    data={"event_key": unit} if unit else {})
        else:
            crm.customers.set_stage_in(uow, roles[role], what, arg, unit=unit or None,
                                       amount=3_000_000 if what != "owner" else None)

    if batched:
        with crm.unit_of_work() as uow, crm.hooks.batched(uow):
            for step in steps:
                apply(uow, step)
    else:
        for step in steps:
            with crm.unit_of_work() as uow:
                apply(uow, step)


def state(crm: CRM, roles: dict[str, int]) -> dict[str, Any]:
    """What the club holds about the roles, customer ids replaced by role names."""
    name = {cid: role for role, cid in roles.items()}
    ids = list(name)
    with crm.unit_of_work() as uow:
        s = uow.session
        ledger = [(name[r.customer_id], r.kind, r.points, r.event_kind,
                   name.get(r.event_subject or 0), r.event_ref, r.project)
                  for r in s.scalars(select(LedgerRow).where(LedgerRow.customer_id.in_(ids))
                                     .order_by(LedgerRow.id))]
        members = sorted((name[m.customer_id], m.status, m.tier, m.contracts)
                         for m in s.scalars(select(MemberRow)
                                            .where(MemberRow.customer_id.in_(ids))))
        tiers = [(name[t.customer_id], t.old_tier, t.new_tier, t.reason, t.lifetime_points,
                  t.contracts)
                 for t in s.scalars(select(TierChangeRow)
                                    .where(TierChangeRow.customer_id.in_(ids))
                                    .order_by(TierChangeRow.id))]
        referrals = sorted((name[r.referrer_id], name[r.referred_id], r.project, r.status,
                            r.reward_entry_id is not None, r.note)
                           for r in s.scalars(select(ReferralRow)
                                              .where(ReferralRow.referred_id.in_(ids))))
    # The same rows; not always in the same order: a batch's interactions are
    # answered before its stage changes, so a member's visit logged after a referral
    # reward (of a stage change) is written before it. Tier changes keep the order
    # of each customer's.
    return {"ledger": sorted(ledger, key=repr), "members": members,
            "tiers": sorted(tiers, key=lambda row: row[0]), "referrals": referrals}


def cast(crm: CRM, run: int) -> dict[str, int]:
    """The same people for each run: two members, a prospect one of them refers, a
    buyer about to own, and a customer nothing here concerns."""
    m = lambda i: f"13{run}0000{i:04d}"  # noqa: E731
    roles = {
        "member": owner(crm, m(1), unit=f"{run}-1-101").id,
        "investor": owner(crm, m(2), unit=f"{run}-1-201").id,
        "referred": customer(crm, m(3)).id,
        "new_owner": customer(crm, m(4)).id,
        "bystander": customer(crm, m(5)).id,
    }
    club(crm).refer(roles["member"], roles["referred"], "XL2")
    return roles


SCRIPT: list[Step] = [
    ("bystander", "visitor", "XL2", ""),
    ("member", "log", "event", "E-{run}"),
    ("referred", "subscriber", "XL2", "{run}-2-101"),   # one customer, two changes:
    ("referred", "buyer", "XL2", "{run}-2-101"),        # the second converts the referral
    ("investor", "buyer", "XL2", "{run}-3-301"),        # a member's second flat
    ("new_owner", "buyer", "YH1", "{run}-4-401"),
    ("new_owner", "owner", "YH1", "{run}-4-401"),       # enrolled in the batch,
    ("new_owner", "buyer", "XL2", "{run}-4-402"),       # then earns and counts it
    ("new_owner", "log", "visit", ""),
    ("bystander", "log", "visit", ""),
    ("member", "log", "visit", ""),
]


def script(run: int) -> list[Step]:
    return [(r, w, a, u.format(run=run)) for r, w, a, u in SCRIPT]


def test_a_batch_gives_what_one_change_at_a_time_gives(crm: CRM) -> None:
    one_by_one = cast(crm, 1)
    play(crm, one_by_one, script(1), batched=False)
    batch = cast(crm, 2)
    play(crm, batch, script(2), batched=True)
    expected = state(crm, one_by_one)
    got = state(crm, batch)
    # Units, event keys and interaction ids differ per run by construction; they
    # name the award keys (`XL2/1-3-301`, `E-1`, `interaction:12`).
    for rows in (expected["ledger"], got["ledger"]):
        rows[:] = [(*row[:5], row[5] and re.sub(r"[-:/].*", "", row[5]), *row[6:])
                   for row in rows]
    assert got == expected
    # The script did something worth comparing.
    assert ("new_owner", "active", "金卡", 2) in got["members"]
    assert ("investor", "active", "金卡", 2) in got["members"]
    assert any(r[1] == "referral" and r[0] == "member" for r in got["ledger"])
    assert any(r[3] == "visit" and r[0] == "new_owner" for r in got["ledger"])
    assert not any(r[0] == "bystander" for r in got["ledger"])
    assert [r[3] for r in got["referrals"]] == ["converted"]


def test_a_repeated_batch_awards_nothing_twice(crm: CRM) -> None:
    roles = cast(crm, 3)
    play(crm, roles, script(3), batched=True)
    before = state(crm, roles)
    # The awarded interactions delivered again (a re-sync): every award is keyed.
    with crm.unit_of_work() as uow:
        awarded = set(uow.session.scalars(select(LedgerRow.interaction_id)))
        again = [i for cid in roles.values()
                 for i in crm.interactions.list_in(uow.session, cid) if i.id in awarded]
        assert len(again) == 5
        recrm_interactions_logged(uow, again)
    assert state(crm, roles) == before


def test_the_batch_forms_replace_the_per_change_ones(crm: CRM) -> None:
    [info] = [i for i in crm.plugin_infos if i.name == "membership"]
    assert {"recrm_stages_changed", "recrm_interactions_logged"} <= set(info.hooks)
    assert not {"recrm_stage_changed", "recrm_interaction_logged"} & set(info.hooks)


def test_a_batch_of_awards_gives_what_one_award_at_a_time_gives(crm: CRM) -> None:
    """``award_many_in`` (the demo's owners' days and contract credits): the same
    entries, duplicates refused, and the tier changes each award reaches in turn."""
    def awards(roles: dict[str, int]) -> list[tuple[int, AwardIn]]:
        at = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
        return [(roles[role], AwardIn(entry_kind="earn", event_kind="event",
                                      subject=roles[role], ref=ref, points=points,
                                      occurred_at=at, reason=ref))
                for role, ref, points in [("member", "E-1", 1000), ("investor", "E-1", 200),
                                          ("member", "E-2", 600),   # 银卡 at 1600
                                          ("member", "E-1", 1000),  # awarded before
                                          ("investor", "E-3", 50)]]

    one_by_one = cast(crm, 4)
    results = []
    for cid, award in awards(one_by_one):
        with crm.unit_of_work() as uow:
            member = lock_member(uow.session, cid)
            assert member is not None
            results.append(award_in(uow, member, award) is not None)
    batch = cast(crm, 5)
    with crm.unit_of_work() as uow:
        batched = [new is not None for new in award_many_in(uow, awards(batch))]
    assert batched == results == [True, True, True, False, True]
    assert state(crm, batch) == state(crm, one_by_one)
    assert ("member", "active", "银卡", 1) in state(crm, batch)["members"]


ENROLMENTS: list[Step] = [
    ("referred", "buyer", "YH1", "{run}-5-101"),
    ("new_owner", "buyer", "YH1", "{run}-4-401"),
    ("new_owner", "owner", "YH1", "{run}-4-401"),       # enrolled first,
    ("investor", "buyer", "XL2", "{run}-3-301"),        # a member's contracts between,
    ("referred", "owner", "YH1", "{run}-5-101"),        # second,
    ("bystander", "buyer", "YH1", "{run}-6-101"),
    ("bystander", "owner", "YH1", "{run}-6-101"),       # third,
    ("bystander", "owner", "XL2", "{run}-6-201"),       # then counts a second contract
]


def enrolments(crm: CRM, roles: dict[str, int]) -> dict[str, Any]:
    """Who was enrolled in which order (member rows, numbers, events) and each
    member's tier changes in turn."""
    name = {cid: role for role, cid in roles.items()}
    with crm.unit_of_work() as uow:
        rows = uow.session.scalars(select(MemberRow).where(MemberRow.customer_id.in_(name))
                                   .order_by(MemberRow.id)).all()
        events = uow.session.scalars(select(MemberEventRow)
                                     .where(MemberEventRow.customer_id.in_(name))
                                     .order_by(MemberEventRow.id)).all()
        tiers = uow.session.scalars(select(TierChangeRow)
                                    .where(TierChangeRow.customer_id.in_(name))
                                    .order_by(TierChangeRow.id)).all()
        return {
            "by_id": [name[m.customer_id] for m in rows],
            "by_number": [name[m.customer_id] for m in sorted(rows, key=lambda m: m.number)],
            "numbered": all(m.number == club(crm).settings.member_number(m.id) for m in rows),
            "events": [(name[e.customer_id], e.action, e.note) for e in events],
            "tiers": {role: [(t.old_tier, t.new_tier, t.reason, t.lifetime_points,
                              t.contracts) for t in tiers if name[t.customer_id] == role]
                      for role in roles},
        }


def test_a_batch_enrols_its_new_owners_as_one_change_at_a_time_does(crm: CRM) -> None:
    """The new owners of one batch get their rows (and numbers) in the order of the
    changes that enrol them, their enrolments recorded at those changes, and their
    contracts as of each change."""
    steps = lambda run: [(r, w, a, u.format(run=run)) for r, w, a, u in ENROLMENTS]  # noqa: E731
    one_by_one = cast(crm, 6)
    play(crm, one_by_one, steps(6), batched=False)
    batch = cast(crm, 7)
    play(crm, batch, steps(7), batched=True)
    expected = enrolments(crm, one_by_one)
    got = enrolments(crm, batch)
    assert got == expected
    assert got["by_id"] == ["member", "investor", "new_owner", "referred", "bystander"]
    assert got["by_number"] == got["by_id"] and got["numbered"]
    assert [e[0] for e in got["events"]][2:] == ["new_owner", "referred", "bystander"]
    # The second contract, counted at the change after the enrolling one.
    assert got["tiers"]["bystander"] == [(None, "普通", "enrol", 0, 1),
                                         ("普通", "金卡", "contracts", 0, 2)]
    assert state(crm, batch)["members"] == state(crm, one_by_one)["members"]


def test_a_new_owner_enrolled_meanwhile_is_left_as_they_are(crm: CRM) -> None:
    """``insert_members`` for a customer whose row a concurrent operation committed
    first (its insert is ignored): that row, not new, its number kept; the others
    of the batch are enrolled."""
    roles = cast(crm, 8)
    with crm.unit_of_work() as uow:
        joined = insert_members(uow, [
            Joining(roles["new_owner"], 1, dt.datetime(2025, 3, 1, tzinfo=dt.UTC)),
            Joining(roles["member"], 1, dt.datetime(2025, 3, 1, tzinfo=dt.UTC)),
        ])
        member = lock_member(uow.session, roles["member"])
        assert member is not None
        number = member.number
    assert joined[roles["member"]][1] is False and joined[roles["member"]][0].number == number
    new, is_new = joined[roles["new_owner"]]
    assert is_new and new.number == club(crm).settings.member_number(new.id)
    assert new.status == "active" and new.contracts == 1


def test_a_batch_of_enrolments_gives_what_one_enrolment_at_a_time_gives(crm: CRM) -> None:
    """``enrol_many_in`` (the demo's opt-ins): new members numbered in the order
    given with their contracts counted, an active member left as is, one who left
    re-joined, a customer named twice enrolled once; the same rows, numbers, events
    and tier changes as ``enrol_in`` for each in turn."""
    def people(run: int) -> dict[str, int]:
        m = lambda i: f"13{run}1000{i:04d}"  # noqa: E731
        roles = {"buyer": customer(crm, m(1)).id, "member": owner(crm, m(2)).id,
                 "leaver": owner(crm, m(3), unit=f"{run}-1-301").id,
                 "prospect": customer(crm, m(4)).id}
        crm.customers.set_stage(roles["buyer"], "buyer", "YH1", unit=f"{run}-2-101",
                                amount=3_000_000)
        club(crm).leave(roles["leaver"], reason="moved away")
        return roles

    order = ["prospect", "member", "buyer", "leaver", "prospect"]
    one_by_one, batch = people(3), people(4)
    changed: dict[str, list[bool]] = {"one": [], "batch": []}
    for role in order:
        with crm.unit_of_work() as uow:
            _, done = enrol_in(uow, crm.customers.get_in(uow, one_by_one[role]), note="opt-in")
            changed["one"].append(done)
    with crm.unit_of_work() as uow:
        got = enrol_many_in(uow, [crm.customers.get_in(uow, batch[r]) for r in order],
                            note="opt-in")
        changed["batch"] = [got[batch[r]][1] for r in order]
    assert changed["one"] == [True, False, True, True, False]
    assert changed["batch"] == [True, False, True, True, True]  # the second is the first
    expected, result = enrolments(crm, one_by_one), enrolments(crm, batch)
    assert result["by_id"][2:] == expected["by_id"][2:] == ["prospect", "buyer"]
    assert result["by_number"] == result["by_id"] and result["numbered"]
    assert result["tiers"] == expected["tiers"]
    # A re-joining member's event comes before the new members' in a batch.
    assert sorted(result["events"]) == sorted(expected["events"])
    assert state(crm, batch)["members"] == state(crm, one_by_one)["members"]
