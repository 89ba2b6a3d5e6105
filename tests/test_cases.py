"""Service cases: SLA, transitions, transfers, escalation, listing and the case hooks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import update

from recrm_core import (
    CRM,
    Actor,
    Case,
    CaseIn,
    InvalidInput,
    NotFound,
    PluginError,
    Refused,
    UnitOfWork,
    hookimpl,
)
from recrm_core.tables import CaseRow
from recrm_core.testing import HookRecorder

UTC = dt.UTC
T0 = dt.datetime(2024, 5, 1, 0, 0, tzinfo=UTC)
H = dt.timedelta(hours=1)


@pytest.fixture
def cid(crm: CRM) -> int:
    return crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id


def _open(crm: CRM, customer_id: int, **fields: Any) -> Case:
    opened_at = fields.pop("opened_at", None)
    data = {"customer_id": customer_id, "category": "repair", "subject": "漏水"} | fields
    return crm.cases.open(data, opened_at=opened_at)


def _actions(case: Case) -> list[str]:
    return [h.action for h in case.history]


# -- opening and the SLA ----------------------------------------------------------------


def test_open_sets_sla_from_policy_and_records_history(crm: CRM, cid: int) -> None:
    actor = Actor(staff_id="kf01", role="service")
    case = crm.cases.open(
        CaseIn(customer_id=cid, category=" Repair ", subject="卫生间漏水", priority="high",
               project="XL2", department="客服部", assignee="李娜", description="楼上渗水"),
        actor,
        opened_at=T0,
    )
    assert case.status == "open"
    assert case.category == "repair"
    assert case.project == "XL2"
    assert case.opened_at == T0
    assert case.sla_due_at == T0 + 24 * H  # default policy: high = 24 h
    assert case.escalation_level == 0
    assert [(h.action, h.to_value, h.actor_staff, h.actor_role, h.at) for h in case.history] == [
        ("open", "open", "kf01", "service", T0)
    ]
    assert [p.code for p in crm.projects.list()] == ["XL2"]
    assert case.overdue  # back-dated to 2024: long past due
    assert crm.cases.get(case.id) == case


@pytest.mark.recrm_settings(sla={"urgent": 2, "categories": {"complaint": {"high": 12}}})
def test_sla_policy_category_overrides(crm: CRM, cid: int) -> None:
    assert _open(crm, cid, opened_at=T0, priority="urgent").sla_due_at == T0 + 2 * H
    assert _open(crm, cid, opened_at=T0, category="complaint",
                 priority="high").sla_due_at == T0 + 12 * H
    # a category override of one priority leaves its other priorities on the defaults
    assert _open(crm, cid, opened_at=T0, category="complaint").sla_due_at == T0 + 72 * H
    assert _open(crm, cid, opened_at=T0, priority="low").sla_due_at == T0 + 168 * H


def test_overdue_depends_on_now(crm: CRM, cid: int) -> None:
    case = _open(crm, cid, opened_at=T0, priority="urgent")  # due T0 + 4h
    assert not crm.cases.get(case.id, now=T0 + 3 * H).overdue
    assert crm.cases.get(case.id, now=T0 + 5 * H).overdue
    crm.cases.resolve(case.id)
    assert not crm.cases.get(case.id, now=T0 + 5 * H).overdue


def test_open_refuses_bad_input(crm: CRM, cid: int) -> None:
    with pytest.raises(NotFound, match="no customer 999"):
        _open(crm, 999)
    with pytest.raises(InvalidInput) as bad:
        _open(crm, cid, subject="  ")
    assert bad.value.field == "subject"
    with pytest.raises(InvalidInput) as bad:
        _open(crm, cid, priority="asap")
    assert bad.value.field == "priority"
    with pytest.raises(InvalidInput) as bad:
        _open(crm, cid, department="部" * 65)
    assert bad.value.field == "department"
    with pytest.raises(InvalidInput, match="time zone"):
        _open(crm, cid, opened_at=dt.datetime(2024, 5, 1))
    with pytest.raises(InvalidInput, match="future"):
        _open(crm, cid, opened_at=dt.datetime.now(UTC) + 24 * H)
    assert crm.cases.summary()["total"] == 0


def test_priority_is_case_insensitive(crm: CRM, cid: int) -> None:
    assert _open(crm, cid, priority=" URGENT ").priority == "urgent"


def test_merged_customer_opens_on_survivor_and_cases_move(crm: CRM) -> None:
    a = crm.customers.add({"mobile": "13812345678"}).customer.id
    b = crm.customers.add({"mobile": "13912345678"}).customer.id
    before = _open(crm, b)
    crm.customers.merge(a, b)
    after = _open(crm, b)
    assert after.customer_id == a
    assert crm.cases.get(before.id).customer_id == a
    assert {c.id for c in crm.cases.list(customer_id=b)} == {before.id, after.id}


# -- status transitions -------------------------------------------------------------------


def test_lifecycle_with_history(crm: CRM, cid: int) -> None:
    case = _open(crm, cid, opened_at=T0)
    actor = Actor(staff_id="gc07", role="service")
    started = crm.cases.start(case.id, actor=actor, note="上门查看")
    assert started.status == "in_progress"
    resolved = crm.cases.resolve(case.id, note="换了水管", actor=actor)
    assert resolved.status == "resolved" and resolved.resolved_at is not None
    assert resolved.closed_at is None
    closed = crm.cases.close(case.id)
    assert closed.status == "closed"
    assert closed.closed_at is not None and closed.closed_at >= resolved.resolved_at
    assert [(h.action, h.from_value, h.to_value, h.note, h.actor_staff)
            for h in closed.history] == [
        ("open", None, "open", None, None),
        ("start", "open", "in_progress", "上门查看", "gc07"),
        ("resolve", "in_progress", "resolved", "换了水管", "gc07"),
        ("close", "resolved", "closed", None, None),
    ]


def test_reopen_clears_resolution_and_restarts_sla(crm: CRM, cid: int) -> None:
    case = _open(crm, cid, opened_at=T0, priority="high")
    crm.cases.resolve(case.id)
    crm.cases.close(case.id)
    reopened = crm.cases.reopen(case.id, note="又漏了")
    assert reopened.status == "reopened"
    assert reopened.resolved_at is None and reopened.closed_at is None
    reopened_at = reopened.history[-1].at
    assert reopened.history[-1].action == "reopen"
    assert reopened.sla_due_at == reopened_at + 24 * H
    assert not reopened.overdue
    # reopened → in_progress → resolved, and reopened → resolved directly
    assert crm.cases.start(case.id).status == "in_progress"
    assert crm.cases.resolve(case.id).status == "resolved"
    crm.cases.reopen(case.id)
    assert crm.cases.resolve(case.id).status == "resolved"


def test_resolve_straight_from_open(crm: CRM, cid: int) -> None:
    case = _open(crm, cid, category="inquiry")
    assert crm.cases.resolve(case.id, note="电话答复").status == "resolved"


@pytest.mark.parametrize(
    ("path", "action", "allowed"),
    [
        ([], "close", "start, resolve, transfer, escalate"),
        ([], "reopen", "start, resolve, transfer, escalate"),
        (["start"], "start", "resolve, transfer, escalate"),
        (["resolve"], "start", "close, reopen"),
        (["resolve"], "resolve", "close, reopen"),
        (["resolve", "close"], "close", "reopen"),
        (["resolve", "close"], "resolve", "reopen"),
        (["resolve", "reopen"], "reopen", "start, resolve, transfer, escalate"),
        (["resolve", "reopen"], "close", "start, resolve, transfer, escalate"),
    ],
)
def test_refused_transitions_name_status_and_allowed(
    crm: CRM, cid: int, path: list[str], action: str, allowed: str
) -> None:
    case = _open(crm, cid)
    for step in path:
        getattr(crm.cases, step)(case.id)
    before = crm.cases.get(case.id)
    with pytest.raises(Refused) as refused:
        getattr(crm.cases, action)(case.id)
    assert str(refused.value) == (
        f"case {case.id} is {before.status}: cannot {action}; allowed: {allowed}"
    )
    assert crm.cases.get(case.id) == before


def test_unknown_case(crm: CRM) -> None:
    calls: list[Callable[[], Case]] = [
        lambda: crm.cases.get(404),
        lambda: crm.cases.start(404),
        lambda: crm.cases.resolve(404),
        lambda: crm.cases.close(404),
        lambda: crm.cases.reopen(404),
        lambda: crm.cases.escalate(404),
        lambda: crm.cases.transfer(404, department="工程部"),
    ]
    for call in calls:
        with pytest.raises(NotFound, match="no case 404"):
            call()


# -- transfers ----------------------------------------------------------------------------


def test_transfer_records_every_hand_over(crm: CRM, cid: int) -> None:
    case = _open(crm, cid, department="客服部", assignee="李娜")
    actor = Actor(staff_id="kf01")
    moved = crm.cases.transfer(case.id, department="工程部", note="需要维修", actor=actor)
    # another department without a named assignee: the old assignee does not follow
    assert (moved.department, moved.assignee) == ("工程部", None)
    moved = crm.cases.transfer(case.id, assignee="张工")
    assert (moved.department, moved.assignee) == ("工程部", "张工")
    moved = crm.cases.transfer(case.id, department="物业", assignee="王经理")
    transfers = [(h.from_value, h.to_value, h.note, h.actor_staff)
                 for h in moved.history if h.action == "transfer"]
    assert transfers == [
        ("客服部/李娜", "工程部/-", "需要维修", "kf01"),
        ("工程部/-", "工程部/张工", None, None),
        ("工程部/张工", "物业/王经理", None, None),
    ]
    assert moved.status == "open"  # a transfer is not a status change


def test_transfer_refusals(crm: CRM, cid: int) -> None:
    case = _open(crm, cid, department="工程部", assignee="张工")
    with pytest.raises(Refused, match="already with 工程部/张工"):
        crm.cases.transfer(case.id, department="工程部", assignee="张工")
    with pytest.raises(Refused, match="already with"):
        crm.cases.transfer(case.id, department=" 工程部 ")
    with pytest.raises(InvalidInput) as neither:
        crm.cases.transfer(case.id, department=" ", assignee=None)
    assert neither.value.field == "department,assignee"
    crm.cases.resolve(case.id)
    with pytest.raises(Refused, match="is resolved: cannot transfer; allowed: close, reopen"):
        crm.cases.transfer(case.id, department="物业")
    assert _actions(crm.cases.get(case.id)) == ["open", "resolve"]


# -- escalation ---------------------------------------------------------------------------


def test_escalate_raises_priority_and_recomputes_sla_from_opening(crm: CRM, cid: int) -> None:
    case = _open(crm, cid, opened_at=T0, priority="low")
    first = crm.cases.escalate(case.id, note="客户投诉升级", actor=Actor(staff_id="kf01"))
    assert (first.escalation_level, first.priority) == (1, "normal")
    assert first.sla_due_at == T0 + 72 * H
    # one level up: the priority one step, the case handed to the level's department
    # (the default levels: the project's desk, CRC, HQ), its owners notified
    assert [(h.action, h.from_value, h.to_value) for h in first.history[1:]] == [
        ("escalate", "0", "1"),
        ("priority", "low", "normal"),
        ("transfer", "-/-", "CRC/-"),
        ("notify", None, "-"),
    ]
    assert first.history[1].note == "客户投诉升级"
    assert (first.level, first.department) == ("city customer-relations centre", "CRC")
    top = crm.cases.escalate(case.id)
    assert (top.escalation_level, top.level, top.department) == (2, "head office", "HQ")
    assert (top.priority, top.sla_due_at) == ("high", T0 + 24 * H)
    # the top level: no further
    with pytest.raises(Refused, match="at the top level \\(head office\\)"):
        crm.cases.escalate(case.id)
    assert crm.cases.get(case.id).escalation_level == 2


@pytest.mark.recrm_settings(sla={"levels": [
    {"name": "desk", "department": "project", "window_hours": 1},
    {"name": "a", "department": "A", "window_hours": 1},
    {"name": "b", "department": "B", "window_hours": 1},
    {"name": "c", "department": "C", "window_hours": 1},
    {"name": "d", "department": "D", "window_hours": 1}]})
def test_escalating_to_urgent_only_raises_the_level(crm: CRM, cid: int) -> None:
    case = _open(crm, cid, opened_at=T0, priority="low")
    for _ in range(4):
        top = crm.cases.escalate(case.id)
    # urgent is the top priority: the level still rises, the priority and due time stay
    assert (top.escalation_level, top.priority, top.sla_due_at) == (4, "urgent", T0 + 4 * H)
    assert _actions(top).count("priority") == 3


@pytest.mark.recrm_settings(sla={"categories": {"inquiry": {"high": 100}}})
def test_escalation_never_moves_the_due_time_later(crm: CRM, cid: int) -> None:
    case = _open(crm, cid, opened_at=T0, category="inquiry")  # normal: 72 h
    escalated = crm.cases.escalate(case.id)
    assert escalated.priority == "high"
    assert escalated.sla_due_at == T0 + 72 * H


def test_escalate_after_reopen_counts_from_reopening(crm: CRM, cid: int) -> None:
    case = _open(crm, cid, opened_at=T0, priority="normal")
    crm.cases.resolve(case.id)
    reopened = crm.cases.reopen(case.id)
    escalated = crm.cases.escalate(case.id)
    assert escalated.sla_due_at == reopened.history[-1].at + 24 * H


def test_escalate_refused_when_closed(crm: CRM, cid: int) -> None:
    case = _open(crm, cid)
    crm.cases.resolve(case.id)
    crm.cases.close(case.id)
    with pytest.raises(Refused, match="is closed: cannot escalate; allowed: reopen"):
        crm.cases.escalate(case.id)
    assert crm.cases.get(case.id).escalation_level == 0


# -- listing and summary ------------------------------------------------------------------


@pytest.fixture
def seeded(crm: CRM, cid: int) -> dict[str, int]:
    other = crm.customers.add({"mobile": "13912345678"}).customer.id
    ids = {
        "late": _open(crm, cid, opened_at=T0, priority="urgent", project="XL2",
                      department="工程部", assignee="张工").id,              # due T0+4h
        "soon": _open(crm, cid, opened_at=T0, priority="high", project="XL2").id,  # T0+24h
        "other": _open(crm, other, opened_at=T0, project="HY1",
                       assignee="张工").id,                                # T0+72h
        "done": _open(crm, other, opened_at=T0, priority="urgent").id,      # T0+4h
    }
    crm.cases.start(ids["soon"])
    crm.cases.resolve(ids["done"])
    return ids | {"cid": cid, "other_cid": other}


def test_list_filters(crm: CRM, seeded: dict[str, int]) -> None:
    def ids(**kw: Any) -> list[int]:
        return [c.id for c in crm.cases.list(**kw)]

    late, soon, other, done = (seeded[k] for k in ("late", "soon", "other", "done"))
    assert ids() == [late, done, soon, other]  # earliest due first
    assert ids(status="open") == [late, other]
    assert ids(status=" In_Progress ") == [soon]
    assert ids(overdue=True, now=T0 + 3 * H) == []
    assert ids(overdue=True, now=T0 + 5 * H) == [late]  # the resolved one is not overdue
    assert ids(overdue=True, now=T0 + 100 * H) == [late, soon, other]
    assert ids(overdue=True, status="open", now=T0 + 100 * H) == [late, other]
    assert ids(customer_id=seeded["cid"]) == [late, soon]
    assert ids(project="XL2") == [late, soon]
    assert ids(assignee="张工") == [late, other]
    assert ids(department="工程部") == [late]
    assert ids(limit=2) == [late, done]
    listed = crm.cases.list(overdue=True, now=T0 + 5 * H)[0]
    assert listed.overdue and listed.project == "XL2" and listed.history == []


def test_list_refusals(crm: CRM, seeded: dict[str, int]) -> None:
    with pytest.raises(NotFound):
        crm.cases.list(project="nope")
    with pytest.raises(NotFound):
        crm.cases.list(customer_id=999)
    with pytest.raises(InvalidInput) as bad:
        crm.cases.list(status="pending")
    assert bad.value.field == "status"
    with pytest.raises(InvalidInput):
        crm.cases.list(limit=0)
    with pytest.raises(InvalidInput, match="time zone"):
        crm.cases.list(overdue=True, now=dt.datetime(2024, 5, 1))


def test_summary(crm: CRM, seeded: dict[str, int]) -> None:
    summary = crm.cases.summary(now=T0 + 30 * H)
    assert summary == {
        "total": 4,
        "by_status": {"open": 2, "in_progress": 1, "resolved": 1, "closed": 0, "reopened": 0},
        "unresolved": 3,
        "overdue": 2,
        "by_channel": {"other": 4},
        "by_level": {"project service desk": 4},
    }
    assert crm.cases.summary(now=T0)["overdue"] == 0


def test_360_view_lists_cases_newest_first(crm: CRM, cid: int) -> None:
    older = _open(crm, cid, opened_at=T0)
    newer = _open(crm, cid, opened_at=T0 + H, category="complaint")
    view = crm.customers.view(cid)
    assert [c.id for c in view.cases] == [newer.id, older.id]
    assert all(c.overdue for c in view.cases)


# -- hooks --------------------------------------------------------------------------------


class AutoRouter:
    """Routes repair cases to the engineering department as soon as they open."""

    @hookimpl
    def recrm_case_opened(self, uow: UnitOfWork, case: Case) -> None:
        if case.category == "repair" and case.department is None:
            uow.crm.cases.transfer_in(uow, case.id, department="工程部", note="auto-routed")


def test_hook_recrm_case_opened(
    crm: CRM, cid: int, register_plugin: Any, hook_recorder: HookRecorder
) -> None:
    register_plugin(AutoRouter())
    case = _open(crm, cid)
    calls = hook_recorder.named("recrm_case_opened")
    assert len(calls) == 1
    seen = calls[0].kwargs["case"]
    assert seen.id == case.id and seen.department is None and seen.status == "open"
    assert isinstance(calls[0].kwargs["uow"], UnitOfWork)
    # the plugin's write in the same unit of work is what the caller gets back
    assert case.department == "工程部"
    assert [(h.action, h.to_value, h.note) for h in case.history] == [
        ("open", "open", None),
        ("transfer", "工程部/-", "auto-routed"),
    ]
    assert crm.cases.get(case.id).department == "工程部"
    assert _open(crm, cid, category="inquiry").department is None


def test_case_opened_plugin_raising_rolls_back(
    crm: CRM, cid: int, register_plugin: Any
) -> None:
    class Broken:
        @hookimpl
        def recrm_case_opened(self, uow: UnitOfWork, case: Case) -> None:
            raise RuntimeError("ticket system down")

    register_plugin(Broken(), name="ticketing")
    with pytest.raises(PluginError, match=r"'ticketing'.*ticket system down"):
        _open(crm, cid)
    assert crm.cases.summary()["total"] == 0
    assert crm.cases.list() == []


class NoteBeforeClosing:
    """Refuses to close a complaint without a closing note from the customer desk, and
    writes a direct ORM change to show hooks can adjust the case they see."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    @hookimpl
    def recrm_case_status_changed(
        self, uow: UnitOfWork, case: Case, old_status: str, new_status: str
    ) -> None:
        self.seen.append((old_status, new_status, case.status))
        if new_status == "closed" and case.category == "complaint" and not case.history[-1].note:
            raise ValueError("a complaint is closed only with the customer's confirmation")
        if new_status == "in_progress" and case.assignee is None:
            uow.session.execute(
                update(CaseRow).where(CaseRow.id == case.id).values(assignee="值班工程师")
            )


def test_hook_recrm_case_status_changed(
    crm: CRM, cid: int, register_plugin: Any, hook_recorder: HookRecorder
) -> None:
    plugin = NoteBeforeClosing()
    register_plugin(plugin, name="complaint-desk")
    case = _open(crm, cid, category="complaint")
    started = crm.cases.start(case.id)
    assert started.assignee == "值班工程师"
    crm.cases.resolve(case.id)
    with pytest.raises(PluginError, match=r"'complaint-desk'.*confirmation"):
        crm.cases.close(case.id)
    after = crm.cases.get(case.id)
    assert after.status == "resolved" and after.closed_at is None
    assert _actions(after) == ["open", "start", "resolve"]
    closed = crm.cases.close(case.id, note="客户确认满意")
    assert closed.status == "closed"
    assert plugin.seen == [
        ("open", "in_progress", "in_progress"),
        ("in_progress", "resolved", "resolved"),
        ("resolved", "closed", "closed"),
        ("resolved", "closed", "closed"),
    ]
    calls = hook_recorder.named("recrm_case_status_changed")
    assert [(c.kwargs["old_status"], c.kwargs["new_status"]) for c in calls] == [
        ("open", "in_progress"), ("in_progress", "resolved"),
        ("resolved", "closed"), ("resolved", "closed"),
    ]
    # transfers and escalations are not status changes
    crm.cases.reopen(case.id)
    crm.cases.transfer(case.id, department="物业")
    crm.cases.escalate(case.id)
    assert len(hook_recorder.named("recrm_case_status_changed")) == 5
