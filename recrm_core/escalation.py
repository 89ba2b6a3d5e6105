"""Escalation levels of service cases, and the sweep that escalates by itself.

``[[sla.levels]]`` lists the levels, lowest first (by default the project's service
desk, the city company's customer-relations centre, head office). A case starts at the
first (``escalation_level`` 0). Escalating — by hand (``cases escalate``) or by
:func:`sweep` — moves it one level up, raises its priority one step (its due time
never moves later), hands it to the level's department (``project``: the case's
project's ``service_department``) without an assignee, and notifies the new owners:
the department's email, else its active staff's, through ``crm.send_message`` after
the commit.

Each level has its own clock: ``level_since`` is when the case reached its level or
last changed status. :func:`sweep` escalates every overdue case whose level's
``window_hours`` (on the case's SLA clock) have passed since then; a case at the top
level stays there and its owners are notified again after each window. Every run
moves ``level_since`` for what it did, so a second run at the same time does nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from .cases import ACTIVE, _lock, _place, _raised, _refuse, overdue_clause
from .config import SlaLevel
from .db import UnitOfWork
from .errors import Refused
from .models import Actor, Message
from .tables import CaseRow, DepartmentRow, ProjectRow, StaffRow

if TYPE_CHECKING:
    from .crm import CRM

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notice:
    """A notification to send once the escalation is committed."""

    case_id: int
    to: tuple[str, ...]
    subject: str
    body: str


def level_department(crm: CRM, session: Session, row: CaseRow, level: int) -> str | None:
    """The department that owns a case at ``level`` (None: the project has no service
    department, the case stays where it is)."""
    department = crm.config.sla.levels[level].department
    if department != "project":
        return department
    if row.project_id is None:
        return None
    return session.scalar(select(ProjectRow.service_department)
                          .where(ProjectRow.id == row.project_id))


def recipients(session: Session, department: str | None) -> tuple[str, ...]:
    """Where a department is notified: its email, else its active staff's emails."""
    if department is None:
        return ()
    email = session.scalar(select(DepartmentRow.email).where(DepartmentRow.code == department))
    if email:
        return (email,)
    return tuple(session.scalars(select(StaffRow.email).where(
        StaffRow.department == department, StaffRow.left_at.is_(None),
        StaffRow.email.is_not(None)).order_by(StaffRow.id)))


def _notice(crm: CRM, uow: UnitOfWork, row: CaseRow, why: str, now: dt.datetime) -> Notice:
    from .cases import CaseService

    to = recipients(uow.session, row.department)
    level = _level(crm, row).name
    CaseService.record(uow, row, "notify", None, ", ".join(to) or "-", why, now)
    due = row.sla_due_at.astimezone(crm.config.zone).strftime("%Y-%m-%d %H:%M")
    return Notice(row.id, to, f"[recrm] case {row.id} overdue at {level}",
                  f"Case {row.id} ({row.category}, priority {row.priority}) is now with "
                  f"{level} ({row.department or '-'}): {why}. It was due {due}.\n"
                  f"Subject: {row.subject}")


def escalate_in(crm: CRM, uow: UnitOfWork, row: CaseRow, note: str | None,
                now: dt.datetime) -> list[Notice]:
    """Move a locked case one level up (see the module docstring); the notices to send
    after the commit."""
    from .cases import CaseService

    if row.status not in ACTIVE:
        raise _refuse(row, "escalate")
    levels = crm.config.sla.levels
    old = row.escalation_level
    if old >= len(levels) - 1:
        raise Refused(f"case {row.id} is at the top level ({levels[-1].name}): it cannot "
                      "be escalated further")
    session = uow.session
    row.escalation_level = old + 1
    row.level_since = row.updated_at = now
    CaseService.record(uow, row, "escalate", str(old), str(old + 1), note, now)
    priority = _raised(row.priority)
    if priority != row.priority:
        due = crm.config.sla.due(CaseService.clock_start(session, row), row.category,
                                 priority, crm.config.zone)
        CaseService.record(uow, row, "priority", row.priority, priority, None, now)
        row.priority = priority
        row.sla_due_at = min(row.sla_due_at, due)
    department = level_department(crm, session, row, old + 1)
    if department is not None and (department, None) != (row.department, row.assignee):
        CaseService.record(uow, row, "transfer", _place(row.department, row.assignee),
                           _place(department, None), f"escalated to {levels[old + 1].name}",
                           now)
        row.department, row.assignee = department, None
    return [_notice(crm, uow, row, note or f"escalated to {levels[old + 1].name}", now)]


def send_notices(crm: CRM, notices: list[Notice]) -> int:
    """Send what escalations committed; a transport's failure is logged, not raised
    (the escalation stands and its history names the addresses)."""
    sent = 0
    for notice in notices:
        for address in notice.to:
            try:
                crm.send_message(Message(channel="email", to=address,
                                         subject=notice.subject, body=notice.body))
            except Exception:  # a transport's failure must not undo the sweep
                log.exception("case %s: notifying %s failed", notice.case_id, address)
                continue
            sent += 1
    return sent


def _level(crm: CRM, row: CaseRow) -> SlaLevel:
    """The case's level; a case above the top (the settings lost levels since) is at the
    top."""
    levels = crm.config.sla.levels
    return levels[min(row.escalation_level, len(levels) - 1)]


def _window_ended(crm: CRM, row: CaseRow, now: dt.datetime) -> bool:
    level = _level(crm, row)
    since = row.level_since or row.opened_at
    return crm.config.sla.after(since, level.window_hours, row.category,
                                crm.config.zone) <= now


def sweep(crm: CRM, now: dt.datetime, actor: Actor | None) -> dict[str, int]:
    """See the module docstring; one transaction per case, notices sent after each."""
    checked = escalated = notified = 0
    with crm.unit_of_work(actor, readonly=True) as uow:
        ids = list(uow.session.scalars(select(CaseRow.id).where(overdue_clause(now))
                                       .order_by(CaseRow.sla_due_at, CaseRow.id)))
    top = len(crm.config.sla.levels) - 1
    for case_id in ids:
        checked += 1
        notices: list[Notice] = []
        with crm.unit_of_work(actor) as uow:
            row = _lock(uow.session, case_id)
            # Re-read under the lock: another sweep or a person may have acted.
            if row.status not in ACTIVE or row.sla_due_at >= now \
                    or not _window_ended(crm, row, now):
                continue
            window = _level(crm, row).window_hours
            if row.escalation_level < top:
                notices = escalate_in(crm, uow, row, f"automatic: overdue and {window:g} h "
                                      "at its level without a status change", now)
                escalated += 1
            else:
                row.level_since = now
                notices = [_notice(crm, uow, row, f"still overdue at the top level after "
                                   f"{window:g} h", now)]
                notified += 1
        send_notices(crm, notices)
    return {"checked": checked, "escalated": escalated, "notified": notified}
