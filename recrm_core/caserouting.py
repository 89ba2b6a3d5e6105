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
from typing import TYPE_CHECKING, cast

from sqlalchemy import Table, bindparam, select, update

from .config import RoutingRule
from .db import UnitOfWork
from .models import CaseHistoryEntry
from .rawsql import RawSelect, RawWrite
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


_TURNS = cast(Table, RoutingTurnRow.__table__)
_STAFF = cast(Table, StaffRow.__table__)
# Prebuilt, on the driver's cursor: every routed opening moves a turn, and the ORM's
# statements and flush cost several times what the four reads and writes do (the
# demo routes hundreds of cases).
_RAW_STAFF = RawSelect(
    select(_STAFF.c.id)
    .where(_STAFF.c.department == bindparam("department"), _STAFF.c.left_at.is_(None))
    .order_by(_STAFF.c.id))
_RAW_TURN = RawSelect(
    select(_TURNS.c.last_staff).where(_TURNS.c.department == bindparam("department"))
    .with_for_update())
_SET_TURN = RawWrite(
    update(_TURNS).where(_TURNS.c.department == bindparam("b_department"))
    .values(last_staff=bindparam("b_last_staff"), updated_at=bindparam("b_updated_at")))


def next_in_turn(uow: UnitOfWork, department: str, now: dt.datetime) -> str | None:
    """The department's next active staff member after the one routed last (None: the
    department has no active staff)."""
    conn = uow.driver
    staff: list[str] = [row[0] for row in _RAW_STAFF.all(conn, {"department": department})]
    if not staff:
        return None
    turn = _RAW_TURN.all(conn, {"department": department})
    if not turn:
        # The department's first turn; two first openings at once both get here, and
        # the database keeps one row (then each waits for the other's lock below).
        insert_or_ignore(uow.session, RoutingTurnRow,
                         {"department": department, "last_staff": "", "updated_at": now},
                         on=["department"])
        turn = _RAW_TURN.all(uow.driver, {"department": department})
    last: str = turn[0][0]
    chosen = next((s for s in staff if s > last), staff[0])
    _SET_TURN.run(uow.driver, {"b_department": department, "b_last_staff": chosen,
                               "b_updated_at": now})
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
