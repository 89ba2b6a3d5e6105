"""Routing new service cases by the ``[[routing]]`` rules.

A rule matches a case's category, and its project when the rule names one; a rule with
the case's project wins over one without. The case goes to the rule's department and,
with ``assign = "round_robin"``, to the department's next active staff member in turn
(ordered by staff id, after the one routed last); with ``assign = "desk"`` it waits for
the department's desk. The turn is one row per department (``routing_turns``), locked
while it moves, so two cases opened at once go to two people. The history records the
rule that routed the case.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import select

from .config import RoutingRule
from .db import UnitOfWork
from .models import CaseHistoryEntry
from .tables import RoutingTurnRow, StaffRow
from .upserting import insert_or_ignore

if TYPE_CHECKING:
    from .crm import CRM


def matching_rule(rules: list[RoutingRule], category: str,
                  project: str | None) -> tuple[int, RoutingRule] | None:
    """The first rule for the category and project, else the first for the category."""
    for wanted in ((project,) if project else ()) + (None,):
        for i, rule in enumerate(rules):
            if rule.category.lower() == category and rule.project == wanted:
                return i, rule
    return None


def next_in_turn(uow: UnitOfWork, department: str, now: dt.datetime) -> str | None:
    """The department's next active staff member after the one routed last (None: the
    department has no active staff)."""
    session = uow.session
    staff = list(session.scalars(select(StaffRow.id).where(
        StaffRow.department == department, StaffRow.left_at.is_(None)).order_by(StaffRow.id)))
    if not staff:
        return None
    insert_or_ignore(session, RoutingTurnRow, {"department": department, "last_staff": "",
                                               "updated_at": now}, on=["department"])
    turn = session.scalars(select(RoutingTurnRow).where(RoutingTurnRow.department == department)
                           .with_for_update()).one()
    chosen = next((s for s in staff if s > turn.last_staff), staff[0])
    turn.last_staff, turn.updated_at = chosen, now
    session.flush()
    return chosen


def route_in(crm: CRM, uow: UnitOfWork, case_id: int, category: str,
             place: tuple[str | None, str | None], project: str | None, *,
             keep_department: bool,
             at: dt.datetime) -> tuple[CaseHistoryEntry, str, str | None] | None:
    """Route a case (its category and current department and assignee: ``place``)
    by the rules (``keep_department``: the opener named a department, which stays; the
    rule's assignment applies within it): the history entry recorded and the case's
    new department and assignee, for the caller to set. None when no rule matches."""
    from .cases import CaseService, _place

    found = matching_rule(crm.config.routing, category, project)
    if found is None:
        return None
    index, rule = found
    department = place[0]
    target = department if keep_department and department else rule.department
    assignee = next_in_turn(uow, target, at) if rule.assign == "round_robin" else None
    where = f", project {rule.project}" if rule.project else ""
    entry = CaseService.write_history(
        uow, case_id, "route", _place(*place), _place(target, assignee),
        f"routing rule {index + 1} (category {rule.category}{where}, {rule.assign})", at)
    return entry, target, assignee
