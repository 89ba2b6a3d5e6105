"""``cases.transition_many``: many status changes in one unit of work, as one call per
step would make them; and two batches of the same cases in other orders at once."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import update

from recrm_core import CRM, Actor, Case, InvalidInput, NotFound, Refused, UnitOfWork, hookimpl
from recrm_core.tables import CaseRow
from recrm_core.testing import StartLine, run_together


@pytest.fixture
def cid(crm: CRM) -> int:
    return crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id


def _open(crm: CRM, customer_id: int) -> Case:
    return crm.cases.open({"customer_id": customer_id, "category": "repair",
                           "subject": "漏水"})


def _history(crm: CRM, case_id: int) -> list[tuple[str, str | None, str | None, str | None,
                                                   str | None]]:
    return [(h.action, h.from_value, h.to_value, h.note, h.actor_staff)
            for h in crm.cases.get(case_id).history]


class Desk:
    """Records each status change; takes up an unassigned case that is started."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str, str]] = []

    @hookimpl
    def recrm_case_status_changed(self, uow: UnitOfWork, case: Case, old_status: str,
                                  new_status: str) -> None:
        self.seen.append((case.id, old_status, new_status))
        if new_status == "in_progress" and case.assignee is None:
            uow.session.execute(
                update(CaseRow).where(CaseRow.id == case.id).values(assignee="值班工程师"))


def test_steps_in_order_as_one_call_each(crm: CRM, cid: int,
                                         register_plugin: Callable[..., str]) -> None:
    desk = Desk()
    register_plugin(desk, name="desk")
    first, second = _open(crm, cid), _open(crm, cid)
    actor = Actor(staff_id="gc07", role="service")
    done = crm.cases.transition_many([
        (first.id, "start", "上门查看"), (second.id, "resolve", "电话答复"),
        (first.id, "resolve", None), (first.id, "close", "客户确认"),
    ], actor=actor)
    # Each step's case as the single call returns it (what the hook wrote included).
    assert [(c.id, c.status) for c in done] == [
        (first.id, "in_progress"), (second.id, "resolved"), (first.id, "resolved"),
        (first.id, "closed")]
    assert done[0].assignee == "值班工程师"
    assert done[-1] == crm.cases.get(first.id)
    assert done[1] == crm.cases.get(second.id)
    assert _history(crm, first.id) == [
        ("open", None, "open", None, None),
        ("start", "open", "in_progress", "上门查看", "gc07"),
        ("resolve", "in_progress", "resolved", None, "gc07"),
        ("close", "resolved", "closed", "客户确认", "gc07"),
    ]
    # One recrm_case_status_changed per step, in order.
    assert desk.seen == [
        (first.id, "open", "in_progress"), (second.id, "open", "resolved"),
        (first.id, "in_progress", "resolved"), (first.id, "resolved", "closed")]


def test_a_refused_step_rolls_back_every_step(crm: CRM, cid: int) -> None:
    first, second = _open(crm, cid), _open(crm, cid)
    with pytest.raises(Refused, match=f"case {second.id} is open: cannot close"):
        crm.cases.transition_many([(first.id, "resolve", None), (second.id, "close", None)])
    assert crm.cases.get(first.id).status == "open"
    assert _history(crm, first.id) == [("open", None, "open", None, None)]
    with pytest.raises(NotFound):
        crm.cases.transition_many([(first.id, "resolve", None), (10**9, "close", None)])
    assert crm.cases.get(first.id).status == "open"


def test_unknown_action_refused_before_anything(crm: CRM, cid: int) -> None:
    case = _open(crm, cid)
    with pytest.raises(InvalidInput) as bad:
        crm.cases.transition_many([(case.id, "resolve", None), (case.id, "escalate", None)])
    assert bad.value.field == "action"
    assert crm.cases.get(case.id).status == "open"
    assert crm.cases.transition_many([]) == []


def test_an_analyst_may_not(crm: CRM, cid: int) -> None:
    case = _open(crm, cid)
    with pytest.raises(Exception, match="analyst"):
        crm.cases.transition_many([(case.id, "resolve", None)],
                                  actor=Actor(staff_id="a1", role="analyst"))
    assert crm.cases.get(case.id).status == "open"


def _resolver(url: str, key_file: str, case_ids: list[int], start: StartLine) -> str:
    crm = CRM(database_url=url, settings={"key_file": key_file})
    try:
        crm.cases.get(case_ids[0])  # connected and warm before the start
        start.wait()
        try:
            crm.cases.transition_many([(case_id, "resolve", None) for case_id in case_ids])
        except Refused:
            return "refused"
        return "resolved"
    finally:
        crm.close()


def test_batches_of_the_same_cases_in_other_orders_at_once(
        crm: CRM, cid: int, recrm_database_url: str) -> None:
    """The batches lock their cases in id order first: one resolves them all, the
    others wait for it and are refused (resolved already), none deadlocks."""
    ids = [_open(crm, cid).id for _ in range(40)]
    orders = [ids, ids[::-1], ids[20:] + ids[:20]]
    results = run_together(_resolver, [(recrm_database_url, str(crm.key_file), order)
                                       for order in orders])
    assert sorted(results) == ["refused", "refused", "resolved"]
    for case_id in ids:
        assert [a for a, *_ in _history(crm, case_id)] == ["open", "resolve"]
