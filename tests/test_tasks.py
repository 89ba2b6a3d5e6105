"""Follow-up tasks: the SDK, the rules, the 360 view, privacy, hooks; on both backends."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from recrm_core import CRM, hookimpl
from recrm_core.db import UnitOfWork
from recrm_core.errors import Forbidden, InvalidInput, NotFound, PluginError, Refused
from recrm_core.models import Actor, Task
from recrm_core.projects import known_project_id
from recrm_core.tasks import parse_due

NOW = dt.datetime.now(dt.UTC)
ZHANG = Actor(staff_id="zhang", role="sales")
LI = Actor(staff_id="li", role="sales")


@pytest.fixture
def cid(crm: CRM) -> int:
    return crm.customers.add({"name": "王伟", "mobile": "13812345678", "project": "XL2",
                              "owner_staff": "zhang"}).customer.id


def _add(crm: CRM, cid: int, **extra: Any) -> Task:
    data = {"customer_id": cid, "project": "XL2", "kind": "call",
            "due_at": NOW + dt.timedelta(hours=2), "staff": "zhang", **extra}
    return crm.tasks.add(data)


def test_add_list_done_cancel(crm: CRM, cid: int) -> None:
    first = _add(crm, cid, note="问预算")
    second = _add(crm, cid, kind="wechat", due_at=NOW - dt.timedelta(hours=1))
    assert (first.status, first.owner_staff, first.note, first.rule) == \
        ("open", "zhang", "问预算", None)
    assert [t.id for t in crm.tasks.list()] == [second.id, first.id]  # earliest due first
    assert [t.id for t in crm.tasks.list(overdue=True)] == [second.id]
    assert crm.tasks.list(overdue=True)[0].overdue
    done = crm.tasks.done(first.id)
    assert done.status == "done" and done.closed_at is not None
    with pytest.raises(Refused, match="is done, not open"):
        crm.tasks.done(first.id)
    cancelled = crm.tasks.cancel(second.id, "客户出国")
    assert (cancelled.status, cancelled.cancel_reason) == ("cancelled", "客户出国")
    with pytest.raises(Refused):
        crm.tasks.cancel(second.id, "again")
    with pytest.raises(InvalidInput, match="reason"):
        crm.tasks.cancel(first.id, "  ")
    assert crm.tasks.list() == []
    assert {t.status for t in crm.tasks.list(status=None)} == {"done", "cancelled"}
    with pytest.raises(NotFound):
        crm.tasks.done(999)


def test_done_names_the_interaction_of_the_same_customer(crm: CRM, cid: int) -> None:
    task = _add(crm, cid)
    other = crm.customers.add({"mobile": "13900000000"}).customer.id
    theirs = crm.interactions.log(other, {"kind": "call"})
    with pytest.raises(NotFound, match="no interaction"):
        crm.tasks.done(task.id, theirs.id)
    ours = crm.interactions.log(cid, {"kind": "call", "summary": "聊了户型"})
    done = crm.tasks.done(task.id, ours.id)
    assert (done.interaction_id, done.closed_at) == (ours.id, ours.occurred_at)


def test_input_is_validated(crm: CRM, cid: int) -> None:
    with pytest.raises(InvalidInput, match="due_at"):
        crm.tasks.add({"customer_id": cid, "project": "XL2", "kind": "call",
                       "due_at": dt.datetime(2026, 1, 1)})  # no time zone
    with pytest.raises(InvalidInput, match="staff"):
        crm.tasks.add({"customer_id": cid, "project": "XL2", "kind": "call",
                       "due_at": NOW})  # no owner, no actor
    with pytest.raises(NotFound, match="no such project"):
        _add(crm, cid, project="NOPE")
    with pytest.raises(NotFound):
        _add(crm, 4242)


def test_roles(crm: CRM, cid: int) -> None:
    mine = crm.tasks.add({"customer_id": cid, "project": "XL2", "kind": "call",
                          "due_at": NOW, "note": "王伟的预算"}, actor=ZHANG)
    assert mine.owner_staff == "zhang" and mine.created_by == "zhang"
    with pytest.raises(Forbidden, match="only their own"):
        crm.tasks.add({"customer_id": cid, "project": "XL2", "kind": "call",
                       "due_at": NOW, "staff": "zhang"}, actor=LI)
    with pytest.raises(Forbidden):
        crm.tasks.done(mine.id, actor=LI)
    assert crm.tasks.list(actor=LI) == []
    with pytest.raises(Forbidden):
        crm.tasks.list(staff="zhang", actor=LI)
    assert [t.id for t in crm.tasks.list(actor=ZHANG)] == [mine.id]
    analyst = Actor(staff_id="a1", role="analyst")
    assert crm.tasks.list(actor=analyst)[0].note == "(hidden)"
    with pytest.raises(Forbidden):
        crm.tasks.list(actor=Actor(staff_id="p1", role="partner"))
    with pytest.raises(Forbidden):
        crm.tasks.sweep(actor=ZHANG)
    desk = Actor(staff_id="kf1", role="service")
    assert crm.tasks.list(actor=desk) == []
    with pytest.raises(Forbidden):
        crm.tasks.get(mine.id, actor=desk)
    manager = Actor(staff_id="m1", role="manager")
    assert crm.tasks.cancel(mine.id, "换人跟进", actor=manager).status == "cancelled"


def test_an_interaction_by_the_owner_closes_the_oldest_open_task_of_its_kind(
        crm: CRM, cid: int) -> None:
    later = _add(crm, cid, due_at=NOW + dt.timedelta(days=2))
    earlier = _add(crm, cid, due_at=NOW + dt.timedelta(days=1))
    wechat = _add(crm, cid, kind="wechat")
    crm.interactions.log(cid, {"kind": "call", "project": "XL2", "staff": "li"})  # not the owner
    crm.interactions.log(cid, {"kind": "call", "staff": "zhang"})  # no project
    crm.interactions.log(cid, {"kind": "sms", "project": "XL2", "staff": "zhang"})  # other kind
    assert {t.id for t in crm.tasks.list()} == {later.id, earlier.id, wechat.id}
    call = crm.interactions.log(cid, {"kind": "call", "project": "XL2", "staff": "zhang"})
    done = crm.tasks.list(status="done")
    assert [(t.id, t.interaction_id) for t in done] == [(earlier.id, call.id)]
    assert {t.id for t in crm.tasks.list()} == {later.id, wechat.id}


@pytest.mark.recrm_settings(followup={"after_visit_hours": 6})
def test_a_first_visit_creates_a_call_for_the_owner_at_once(crm: CRM, cid: int) -> None:
    visit_at = NOW - dt.timedelta(hours=1)
    crm.interactions.log(cid, {"kind": "visit", "project": "XL2", "staff": "li",
                               "occurred_at": visit_at})
    [task] = crm.tasks.list()
    assert (task.kind, task.owner_staff, task.rule) == ("call", "zhang", "after_visit")
    assert task.due_at == visit_at + dt.timedelta(hours=6)
    crm.interactions.log(cid, {"kind": "visit", "project": "XL2", "staff": "zhang"})
    assert len(crm.tasks.list(status=None)) == 1  # a second visit is no first one
    # Nobody owns the link: whoever received the visit follows up.
    other = crm.customers.add({"mobile": "13900000001", "project": "XL2"}).customer.id
    crm.interactions.log(other, {"kind": "visit", "project": "XL2", "staff": "li"})
    assert [t.owner_staff for t in crm.tasks.list(customer_id=other)] == ["li"]
    # The owner left (their customers not yet moved on): the receiver follows up.
    third = crm.customers.add({"mobile": "13900000005", "project": "XL2",
                               "owner_staff": "zhang"}).customer.id
    crm.directory.add_staff({"id": "zhang", "name": "张", "role": "sales"})
    crm.directory.leave("zhang")
    crm.interactions.log(third, {"kind": "visit", "project": "XL2", "staff": "li"})
    assert [t.owner_staff for t in crm.tasks.list(customer_id=third)] == ["li"]
    assert crm.tasks.sweep(NOW).after_visit == 0  # the rule fired already


def test_the_sweep_catches_first_visits_nobody_followed_up(crm: CRM, cid: int) -> None:
    # A visit that reached the timeline without the rule (an older release, a bulk path).
    from recrm_core.tables import InteractionRow, TaskRow

    crm.interactions.log(cid, {"kind": "visit", "project": "XL2", "staff": "zhang"})
    with crm.unit_of_work() as uow:
        uow.session.query(TaskRow).delete()
    assert crm.tasks.sweep(NOW).after_visit == 1
    assert crm.tasks.sweep(NOW).after_visit == 0
    with crm.unit_of_work() as uow:
        uow.session.query(TaskRow).delete()
        pid = uow.session.query(InteractionRow.project_id).scalar()
    # Followed up since: nothing to do.
    crm.interactions.log(cid, {"kind": "call", "project": "XL2", "staff": "zhang"})
    assert pid is not None and crm.tasks.sweep(NOW).after_visit == 0


def test_a_contact_dated_ahead_is_no_follow_up_yet(crm: CRM, cid: int) -> None:
    """A call dated years ahead (2062 typed for 2026) kept a quiet prospect from ever
    being called: the sweep took it for the last contact."""
    crm.interactions.log(cid, {"kind": "call", "project": "XL2", "staff": "zhang",
                               "occurred_at": NOW + dt.timedelta(days=3650)})
    assert crm.tasks.sweep(NOW + dt.timedelta(days=8)).prospect_idle == 1


def test_the_sweep_calls_quiet_prospects_once_per_quiet_spell(crm: CRM, cid: int) -> None:
    assert crm.tasks.sweep(NOW + dt.timedelta(days=6)).prospect_idle == 0
    swept = crm.tasks.sweep(NOW + dt.timedelta(days=8))
    assert swept.prospect_idle == 1
    assert crm.tasks.sweep(NOW + dt.timedelta(days=9)).prospect_idle == 0  # idempotent
    [task] = crm.tasks.list()
    assert (task.kind, task.owner_staff, task.rule) == ("call", "zhang", "prospect_idle")
    crm.tasks.cancel(task.id, "打不通")
    # Cancelled without a contact: the same spell never calls again.
    assert crm.tasks.sweep(NOW + dt.timedelta(days=10)).prospect_idle == 0
    crm.interactions.log(cid, {"kind": "sms", "project": "XL2", "staff": "zhang",
                               "occurred_at": NOW + dt.timedelta(days=10)})
    assert crm.tasks.sweep(NOW + dt.timedelta(days=16)).prospect_idle == 0
    assert crm.tasks.sweep(NOW + dt.timedelta(days=18)).prospect_idle == 1
    # Nobody who left is given a call.
    gone = crm.customers.add({"mobile": "13900000006", "project": "XL2",
                              "owner_staff": "wu"}).customer.id
    crm.directory.add_staff({"id": "wu", "name": "吴", "role": "sales"})
    crm.directory.leave("wu")
    assert crm.tasks.sweep(NOW + dt.timedelta(days=30)).prospect_idle == 0  # cid has one open
    assert crm.tasks.list(customer_id=gone) == []
    # A visitor is no prospect; an unowned prospect is the pool's business.
    crm.customers.set_stage(cid, "visitor", "XL2")
    crm.customers.add({"mobile": "13900000002", "project": "XL2"})
    assert crm.tasks.sweep(NOW + dt.timedelta(days=60)).prospect_idle == 0


def test_report_per_consultant(crm: CRM, cid: int) -> None:
    on_time = _add(crm, cid, due_at=NOW + dt.timedelta(hours=1))
    crm.tasks.done(on_time.id, now=NOW)
    late = _add(crm, cid, kind="visit", due_at=NOW - dt.timedelta(hours=1))
    crm.tasks.done(late.id, now=NOW)
    _add(crm, cid, kind="sms", due_at=NOW - dt.timedelta(hours=2))  # open, overdue
    _add(crm, cid, staff="li", due_at=NOW + dt.timedelta(days=1))  # open, not yet due
    rows = {r.staff: r for r in crm.tasks.report(now=NOW)}
    assert (rows["zhang"].created, rows["zhang"].done_on_time, rows["zhang"].overdue,
            rows["zhang"].open) == (3, 1, 2, 1)
    assert (rows["li"].created, rows["li"].overdue, rows["li"].open) == (1, 0, 1)
    # the day the tasks were created on the clock (not NOW's: the module is imported
    # minutes earlier, maybe before midnight in the business time zone)
    today = on_time.created_at.astimezone(crm.config.zone).date()
    assert crm.tasks.report(today + dt.timedelta(days=1), None, now=NOW) == []
    assert len(crm.tasks.report(today, today, now=NOW)) == 2


def test_due_today_is_the_business_day(crm: CRM, cid: int) -> None:
    zone = crm.config.zone
    noon = dt.datetime.combine(NOW.astimezone(zone).date(), dt.time(12), zone)
    today = _add(crm, cid, due_at=noon.astimezone(dt.UTC))
    _add(crm, cid, due_at=(noon + dt.timedelta(days=1)).astimezone(dt.UTC))
    assert [t.id for t in crm.tasks.list(due_today=True, now=noon)] == [today.id]


def test_parse_due() -> None:
    zone = dt.timezone(dt.timedelta(hours=8))
    now = dt.datetime(2026, 5, 1, 0, 0, tzinfo=dt.UTC)
    assert parse_due("+3h", zone, now) == now + dt.timedelta(hours=3)
    assert parse_due("+2d", zone, now) == now + dt.timedelta(days=2)
    assert parse_due("2026-05-01 18:00", zone, now) == dt.datetime(2026, 5, 1, 10, 0,
                                                                   tzinfo=dt.UTC)
    assert parse_due("2026-05-01T18:00+00:00", zone, now).hour == 18
    assert parse_due("2026-05-02", zone, now) == dt.datetime(2026, 5, 2, 15, 59, tzinfo=dt.UTC)
    for bad in ("tomorrow", "+3y", "2026-13-01"):
        with pytest.raises(ValueError, match="is no time"):
            parse_due(bad, zone, now)
    with pytest.raises(ValueError, match="outside the dates"):
        parse_due("0001-01-01 00:00", zone, now)


def test_the_360_view_lists_open_tasks(crm: CRM, cid: int) -> None:
    task = _add(crm, cid, note="带看样板间")
    closed = _add(crm, cid, kind="sms")
    crm.tasks.cancel(closed.id, "不需要")
    view = crm.customers.view(cid)
    assert [t.id for t in view.tasks] == [task.id]
    assert crm.customers.view(cid, actor=Actor(staff_id="a1", role="analyst")
                              ).tasks[0].note == "(hidden)"
    assert crm.customers.view(cid, actor=Actor(staff_id="p1", role="partner")).tasks == []


def test_tasks_follow_a_reassign_and_a_merge(crm: CRM, cid: int) -> None:
    task = _add(crm, cid)
    crm.customers.reassign("zhang", "li")
    assert crm.tasks.list()[0].owner_staff == "li"
    duplicate = crm.customers.add({"mobile": "13900000003", "project": "XL2",
                                   "owner_staff": "li"}).customer.id
    theirs = _add(crm, duplicate, staff="li")
    crm.customers.merge(cid, duplicate)
    assert {t.id: t.customer_id for t in crm.tasks.list()} == {task.id: cid, theirs.id: cid}


def test_export_and_erase(crm: CRM, cid: int) -> None:
    task = _add(crm, cid, note="王伟想要138平")
    done = _add(crm, cid, kind="sms")
    sms = crm.interactions.log(cid, {"kind": "sms", "project": "XL2", "staff": "zhang",
                                     "summary": "发了户型图给王伟"})
    exported = crm.privacy.export(cid)
    assert [(t["note"], t["interaction_id"]) for t in exported["tasks"]] == [
        ("王伟想要138平", None), (None, sms.id)]
    report = crm.privacy.erase(cid, "request 7")
    step = next(s for s in report.steps if s["table"] == "tasks")
    assert step["anonymised"] == 2
    after = crm.tasks.list(status=None)
    assert {t.id: (t.status, t.note) for t in after} == {
        task.id: ("cancelled", None), done.id: ("done", None)}


# -- hooks -------------------------------------------------------------------------------------


def test_hook_recrm_task_created(crm: CRM, register_plugin: Any, cid: int) -> None:
    class NoSundays:
        """Refuses tasks due on a Sunday (the sales office is closed)."""

        name = "no_sundays"

        def __init__(self) -> None:
            self.seen: list[Task] = []

        @hookimpl
        def recrm_task_created(self, uow: UnitOfWork, task: Task) -> None:
            self.seen.append(task)
            if task.due_at.astimezone(uow.crm.config.zone).weekday() == 6:
                raise ValueError("the sales office is closed on Sundays")

    plugin = NoSundays()
    register_plugin(plugin)
    zone = crm.config.zone
    monday = dt.datetime(2026, 12, 7, 10, tzinfo=zone)
    task = _add(crm, cid, due_at=monday)
    assert [t.id for t in plugin.seen] == [task.id]
    with pytest.raises(PluginError, match=r"no_sundays.*closed on Sundays"):
        _add(crm, cid, due_at=monday - dt.timedelta(days=1))
    assert len(crm.tasks.list()) == 1  # rolled back
    # The visit rule's task too: the visit's logging rolls back with it.
    saturday = dt.datetime(2026, 12, 5, 10, tzinfo=zone)
    with pytest.raises(PluginError):
        crm.interactions.log(cid, {"kind": "visit", "project": "XL2", "staff": "zhang",
                                   "occurred_at": saturday})
    assert crm.interactions.list(cid) == []
    assert plugin.seen[-1].rule == "after_visit"


def test_hook_recrm_task_done(crm: CRM, register_plugin: Any, cid: int) -> None:
    class NextStep:
        """After a call is done, a WeChat follow-up the next day."""

        name = "next_step"

        @hookimpl
        def recrm_task_done(self, uow: UnitOfWork, task: Task) -> None:
            if task.kind == "call":
                pid = known_project_id(uow.session, task.project)
                uow.crm.tasks.create_in(uow, task.customer_id, pid, kind="wechat",
                                        owner=task.owner_staff,
                                        due_at=(task.closed_at or NOW) + dt.timedelta(days=1),
                                        note=f"after task {task.id}")

    register_plugin(NextStep())
    task = _add(crm, cid)
    call = crm.interactions.log(cid, {"kind": "call", "project": "XL2", "staff": "zhang"})
    [follow] = crm.tasks.list()
    assert (follow.kind, follow.note) == ("wechat", f"after task {task.id}")
    assert follow.due_at == call.occurred_at + dt.timedelta(days=1)
    crm.tasks.cancel(follow.id, "不用了")  # a cancel is no done: nothing more
    assert crm.tasks.list() == []


def test_the_demo_shows_overdue_follow_ups_per_consultant(crm: CRM) -> None:
    from recrm_core.demo import run_demo

    # the demo's own clock decides "today" (NOW is taken when the module is imported,
    # maybe before midnight in the business time zone)
    started = dt.datetime.now(dt.UTC)
    summary = run_demo(crm, seed=3, customers=120).followups
    open_tasks = crm.tasks.list()
    assert summary.open == len(open_tasks) > 0 and summary.done > 0
    today = dt.datetime.combine(started.astimezone(crm.config.zone).date(), dt.time(),
                                crm.config.zone)
    per_staff = {c.staff: (c.open, c.overdue) for c in summary.by_consultant}
    for staff, (n_open, n_overdue) in per_staff.items():
        mine = [t for t in open_tasks if t.owner_staff == staff]
        assert n_open == len(mine)
        assert n_overdue == sum(t.due_at < today for t in mine)
    [xl2] = [p for p in summary.pool if p.project == "XL2"]
    assert xl2.released > xl2.claimed > 0
    assert xl2.in_pool == len(crm.pool.list("XL2"))
