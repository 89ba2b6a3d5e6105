"""The public pool (公海): sweep, claim, release, list, report; on both backends."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from recrm_core import CRM, hookimpl
from recrm_core.db import UnitOfWork, utcnow
from recrm_core.errors import Forbidden, InvalidInput, NotFound, Refused
from recrm_core.models import Actor, OwnerChange

NOW = dt.datetime.now(dt.UTC)


def days(n: float) -> dt.datetime:
    return NOW + dt.timedelta(days=n)


@pytest.fixture
def cid(crm: CRM) -> int:
    return crm.customers.add({"name": "王伟", "mobile": "13812345678", "project": "XL2",
                              "owner_staff": "zhang"}).customer.id


def owner(crm: CRM, cid: int, project: str = "XL2") -> str | None:
    link = next(p for p in crm.customers.get(cid).projects if p.project == project)
    return link.owner_staff


def test_an_owner_who_does_not_follow_up_loses_the_customer(
        crm: CRM, cid: int, hook_recorder: Any) -> None:
    assert crm.pool.sweep(days(14)).released == []
    dry = crm.pool.sweep(days(16), dry_run=True)
    assert [(r.customer_id, r.project, r.owner) for r in dry.released] == [(cid, "XL2", "zhang")]
    assert dry.dry_run and owner(crm, cid) == "zhang"
    swept = crm.pool.sweep(days(16))
    assert [r.customer_id for r in swept.released] == [cid]
    assert owner(crm, cid) is None
    assert crm.pool.sweep(days(17)).released == []  # idempotent
    [event] = crm.pool.history(cid)
    assert (event.action, event.staff, event.reason) == ("released", "zhang", "idle")
    changes = [c for call in hook_recorder.named("recrm_owners_changed")
               for c in call.kwargs["changes"]]
    assert (changes[-1].old_owner, changes[-1].new_owner, changes[-1].reason) == \
        ("zhang", None, "released")
    [entry] = crm.pool.list("XL2")
    assert (entry.customer_id, entry.released_from, entry.reason) == (cid, "zhang", "idle")
    [line] = [e for e in crm.customers.view(cid).timeline if e.kind == "pool_released"]
    assert line.title == "XL2: released to the public pool: zhang did not follow up"


def test_only_the_owners_own_follow_up_keeps_the_clock(crm: CRM, cid: int) -> None:
    crm.interactions.log(cid, {"kind": "call", "project": "XL2", "staff": "li",
                               "occurred_at": days(10)})
    crm.interactions.log(cid, {"kind": "call", "project": "XL3", "staff": "zhang",
                               "occurred_at": days(10)})
    assert [r.customer_id for r in crm.pool.sweep(days(16), dry_run=True).released] == [cid]
    crm.interactions.log(cid, {"kind": "call", "project": "XL2", "staff": "zhang",
                               "occurred_at": days(10)})
    assert crm.pool.sweep(days(16)).released == []
    [released] = crm.pool.sweep(days(26)).released
    assert released.idle_since == days(10)


def test_a_follow_up_counts_once_it_happened(crm: CRM, cid: int) -> None:
    """A call dated years ahead (2062 typed for 2026, or on purpose) kept the customer
    from the pool for ever: the sweep counted it as done today."""
    crm.interactions.log(cid, {"kind": "call", "project": "XL2", "staff": "zhang",
                               "occurred_at": days(3650)})
    crm.interactions.log(cid, {"kind": "subscription", "project": "XL2",
                               "occurred_at": days(3650)})
    [released] = crm.pool.sweep(days(16)).released
    assert released.customer_id == cid and released.idle_since < days(1)


@pytest.mark.recrm_settings(pool={"idle_days": 3})
def test_a_subscription_stops_the_clock_and_a_reassign_restarts_it(crm: CRM, cid: int) -> None:
    other = crm.customers.add({"mobile": "13900000000", "project": "XL2",
                               "owner_staff": "zhang"}).customer.id
    crm.customers.set_stage(cid, "subscriber", "XL2", unit="3-1201", amount=100_000)
    crm.customers.reassign("zhang", "li")
    # Reassigned just now: li has three days from now, whatever zhang did not do.
    assert crm.pool.sweep(days(2)).released == []
    assert [r.customer_id for r in crm.pool.sweep(days(4)).released] == [other]
    assert owner(crm, cid) == "li"


def test_release_cancels_the_old_owners_open_tasks(crm: CRM, cid: int) -> None:
    task = crm.tasks.add({"customer_id": cid, "project": "XL2", "kind": "call",
                          "due_at": days(1), "staff": "zhang"})
    crm.pool.sweep(days(16))
    cancelled = crm.tasks.list(status="cancelled")
    assert [(t.id, t.cancel_reason) for t in cancelled] == [
        (task.id, "released to the public pool")]


def test_claim(crm: CRM, cid: int, hook_recorder: Any) -> None:
    with pytest.raises(Refused, match="not in the pool: zhang has it"):
        crm.pool.claim(cid, "XL2", "li")
    crm.pool.sweep(days(16))
    event = crm.pool.claim(cid, "XL2", "li", now=days(18))
    assert (event.action, event.staff, event.pooled_at) == ("claimed", "li", days(16))
    assert owner(crm, cid) == "li"
    change = hook_recorder.named("recrm_owners_changed")[-1].kwargs["changes"][0]
    assert (change.old_owner, change.new_owner, change.reason) == (None, "li", "claimed")
    with pytest.raises(Refused, match="li already owns customer"):
        crm.pool.claim(cid, "XL2", "li")
    with pytest.raises(Refused, match="li has it"):
        crm.pool.claim(cid, "XL2", "wang")
    # The claim restarted the clock: li has idle_days from the claim.
    assert crm.pool.sweep(days(30)).released == []
    [report] = crm.pool.report()
    assert (report.released, report.claimed, report.median_days_in_pool, report.in_pool) == \
        (1, 1, 2.0, 0)
    crm.projects.add({"code": "XL3", "name": "三期"})
    with pytest.raises(NotFound, match="not at project"):
        crm.pool.claim(cid, "XL3", "li")
    with pytest.raises(NotFound):
        crm.pool.claim(cid, "NOPE", "li")


@pytest.mark.recrm_settings(pool={"reclaim_days": 7})
def test_the_owner_it_was_taken_from_waits_to_claim_it_back(crm: CRM, cid: int) -> None:
    crm.pool.sweep(days(16))
    with pytest.raises(Refused, match="may claim it back only after 7 days"):
        crm.pool.claim(cid, "XL2", "zhang", now=days(20))
    assert crm.pool.claim(cid, "XL2", "zhang", now=days(24)).staff == "zhang"


@pytest.mark.recrm_settings(pool={"max_owned": 1})
def test_nobody_holds_more_than_max_owned(crm: CRM, cid: int) -> None:
    other = crm.customers.add({"mobile": "13900000000", "project": "XL2"}).customer.id
    with pytest.raises(Refused, match=r"zhang already owns 1 customers at XL2 "
                       r"\(pool.max_owned = 1\)"):
        crm.pool.claim(other, "XL2", "zhang")
    assert crm.pool.claim(other, "XL2", "li").staff == "li"


def test_who_may_claim(crm: CRM, cid: int) -> None:
    crm.pool.sweep(days(16))
    li = Actor(staff_id="li", role="sales")
    with pytest.raises(Forbidden, match="only for themselves"):
        crm.pool.claim(cid, "XL2", "wang", actor=li)
    for role in ("service", "analyst", "partner"):
        with pytest.raises(Forbidden):
            crm.pool.claim(cid, "XL2", actor=Actor(staff_id="x", role=role))
    with pytest.raises(Forbidden):
        crm.pool.sweep(actor=li)
    with pytest.raises(InvalidInput):
        crm.pool.claim(cid, "XL2")  # nobody: no actor, no staff
    assert crm.pool.claim(cid, "XL2", actor=li, now=days(17)).staff == "li"
    crm.directory.add_staff({"id": "gone", "name": "走了", "role": "sales"})
    crm.directory.leave("gone")
    crm.customers.add({"mobile": "13900000009", "project": "XL2"})
    with pytest.raises(Refused, match="has left"):
        crm.pool.claim(2, "XL2", "gone")


def test_release_a_consultants_customers(crm: CRM, cid: int) -> None:
    other = crm.customers.add({"mobile": "13900000000", "project": "XL3",
                               "owner_staff": "zhang"}).customer.id
    assert crm.pool.release_staff("zhang", "XL2") == 1
    assert (owner(crm, cid), owner(crm, other, "XL3")) == (None, "zhang")
    assert crm.pool.release_staff("zhang") == 1
    assert crm.pool.history(other)[0].reason == "to_pool"
    with pytest.raises(Forbidden):
        crm.pool.release_staff("li", actor=Actor(staff_id="li", role="sales"))


def test_staff_leave_sends_their_customers_on(crm: CRM, cid: int) -> None:
    for sid in ("zhang", "li"):
        crm.directory.add_staff({"id": sid, "name": sid, "role": "sales"})
    other = crm.customers.add({"mobile": "13900000000", "project": "XL2",
                               "owner_staff": "li"}).customer.id
    with pytest.raises(InvalidInput):
        crm.directory.leave("zhang", reassign_to="li", to_pool=True)
    crm.directory.leave("zhang", reassign_to="li")
    assert owner(crm, cid) == "li"
    crm.directory.add_staff({"id": "wang", "name": "wang", "role": "sales"})
    crm.directory.leave("wang")
    with pytest.raises(Refused, match="has left"):
        crm.directory.leave("li", reassign_to="wang")
    assert crm.directory.get("li").active  # rolled back with the refused move
    gone = crm.directory.leave("li", to_pool=True)
    assert not gone.active and owner(crm, cid) is None and owner(crm, other) is None
    assert {e.reason for e in crm.pool.history(cid)} == {"staff_left"}


def test_pool_list_and_history_roles(crm: CRM, cid: int) -> None:
    crm.customers.add({"mobile": "13900000000", "project": "XL2"})  # never owned
    crm.pool.sweep(days(16))
    entries = crm.pool.list("XL2")
    assert [e.released_from for e in entries] == [None, "zhang"] or \
        [e.released_from for e in entries] == ["zhang", None]
    assert len(crm.pool.list("XL2", limit=1)) == 1
    with pytest.raises(Forbidden):
        crm.pool.list("XL2", actor=Actor(staff_id="p", role="partner"))


def test_a_merge_moves_the_pool_history(crm: CRM, cid: int) -> None:
    duplicate = crm.customers.add({"mobile": "13900000000", "project": "XL3",
                                   "owner_staff": "li"}).customer.id
    crm.pool.release_staff("li")
    crm.customers.merge(cid, duplicate)
    assert [e.project for e in crm.pool.history(cid)] == ["XL3"]


def test_export_and_erase_keep_the_history_without_personal_data(crm: CRM, cid: int) -> None:
    crm.pool.sweep(days(16))
    assert [e["reason"] for e in crm.privacy.export(cid)["pool_history"]] == ["idle"]
    report = crm.privacy.erase(cid, "request 9")
    step = next(s for s in report.steps if s["table"] == "pool_events")
    assert step["retained"] == 1


def test_a_plugin_sees_the_release_and_may_refuse_it(crm: CRM, register_plugin: Any,
                                                     cid: int) -> None:
    class KeepVips:
        name = "keep_vips"

        @hookimpl
        def recrm_owners_changed(self, uow: UnitOfWork, changes: list[OwnerChange]) -> None:
            if any(c.reason == "released" for c in changes):
                raise RuntimeError("VIPs are never released")

    register_plugin(KeepVips())
    with pytest.raises(Exception, match="keep_vips"):
        crm.pool.sweep(days(16))
    assert owner(crm, cid) == "zhang" and crm.pool.history(cid) == []


@pytest.mark.recrm_plugins("channels")
def test_releasing_to_the_pool_never_touches_an_agencys_registration(crm: CRM) -> None:
    recrm_channels = pytest.importorskip("recrm_channels")
    crm.projects.ensure("XL2", "星珑湾二期")
    channels = recrm_channels.service(crm)
    channels.add_agency("A", "链家 A")
    channels.add_agent("a1", "Agent A1", "A")
    reg = channels.register("a1", "XL2", "13812345678", "王伟")
    assert channels.visit("XL2", "13812345678", name="王伟").state == "confirmed"
    [customer] = crm.customers.find(mobile="13812345678")
    crm.pool.claim(customer.id, "XL2", "zhang")
    # Both read at one instant: the time left is the clock's, not the stored row's.
    at = utcnow()
    before = channels.explain(reg.id, now=at).registration
    assert crm.pool.release_staff("zhang") == 1
    crm.pool.claim(customer.id, "XL2", "li")
    after = channels.explain(reg.id, now=at).registration
    assert after == before and after.state == "confirmed"
    assert crm.customers.get(customer.id).projects[0].source == "channel:A"


def test_releases_and_claims_are_audited(crm: CRM, cid: int) -> None:
    crm.pool.sweep(days(16))
    crm.pool.claim(cid, "XL2", "li", actor=Actor(staff_id="li", role="sales"), now=days(17))
    entries = crm.audit.entries(action="pool")
    assert sorted(e.details["action"] for e in entries) == ["claimed", "released"]
    claimed = next(e for e in entries if e.details["action"] == "claimed")
    assert (claimed.customer_id, claimed.actor_staff, claimed.details["staff"]) == \
        (cid, "li", "li")
