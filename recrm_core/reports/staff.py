"""``staff``: per member of staff (the directory, partners aside) and department:
customers owned, interactions logged, customers contacted, contact minutes, open and
overdue follow-up tasks, conversion, and the contact targets with who is behind.

The targets (``[kpi]``): a manager (role ``manager`` in the directory) is in touch
with ``manager_customers_per_year`` distinct customers a year, anyone else spends
``staff_contact_hours_per_quarter`` hours a quarter in contact (their interactions'
``minutes``). Both are prorated by days to the period: a year's target times days /
365, a quarter's times days × 4 / 365 (so March's share of 8 hours a quarter is
8 × 31 × 4 / 365 = 2.7 hours). The period is ``--from``/``--to``; without ``--from``
it starts on the first day of the current quarter, without ``--to`` it ends today
(business time zone), so the targets always have a length to be prorated to. With
``--by`` each period's row has its own share.

Staff ids the figures name but the directory lacks (with ``require_known_staff``
off) are listed too, with the hours target, unless a department is asked for.

Owned customers, open and overdue tasks and the conversion are as they stand now;
interactions and contacts are those in the period. Conversion: of the customers the
person owns who have visited, the share who signed (stage buyer or owner).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, distinct, func, or_, select

from ..db import utcnow
from ..errors import NotFound
from ..tables import CustomerProjectRow, DepartmentRow, InteractionRow, StaffRow, TaskRow
from ..values import STAGE_RANK
from .aggregates import (
    parameters_of,
    period_days,
    period_labels,
    period_of,
    rate,
    reach_of,
    time_conditions,
)
from .model import Chart, Column, Report, ReportRequest, Series

if TYPE_CHECKING:
    from ..config import KpiSettings
    from ..crm import CRM

#: the role shown for an id the directory lacks (its target: contact hours)
UNKNOWN = "(not in directory)"

COLUMNS = [
    Column(key="staff", title="Staff"),
    Column(key="name", title="Name"),
    Column(key="department", title="Department"),
    Column(key="role", title="Role"),
    Column(key="period", title="Period"),
    Column(key="customers_owned", title="Customers owned", kind="int"),
    Column(key="interactions", title="Interactions", kind="int"),
    Column(key="customers_contacted", title="Customers contacted", kind="int"),
    Column(key="contact_minutes", title="Contact minutes", kind="int"),
    Column(key="contact_hours", title="Contact hours", kind="hours"),
    Column(key="open_followups", title="Open follow-ups", kind="int"),
    Column(key="overdue_followups", title="Overdue follow-ups", kind="int"),
    Column(key="conversion", title="Visit to contract", kind="percent"),
    Column(key="target", title="Target", kind="number"),
    Column(key="target_unit", title="Target unit"),
    Column(key="status", title="Status"),
]


def period_of_request(request: ReportRequest, zone: dt.tzinfo) -> ReportRequest:
    """The request with its open ends closed: the current quarter's first day, today."""
    today = dt.datetime.now(zone).date()
    start = request.start or dt.date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
    end = request.end or max(today, start)
    return request.model_copy(update={"start": start, "end": end})


def target_of(role: str, days: int, kpi: KpiSettings) -> tuple[float, str]:
    """The prorated contact target of a ``role`` for ``days``, and its unit."""
    if role == "manager":
        return kpi.manager_customers_per_year * days / 365, "customers"
    return kpi.staff_contact_hours_per_quarter * days * 4 / 365, "hours"


def run(crm: CRM, request: ReportRequest) -> Report:
    dialect = crm.engine.dialect.name
    zone = crm.config.zone
    request = period_of_request(request, zone)
    department = request.options.get("department")
    kpi = crm.config.kpi
    now = utcnow()
    with crm.unit_of_work(request.actor, readonly=True) as uow:
        session = uow.session
        reach = reach_of(session, "staff", request)
        people = select(StaffRow.id, StaffRow.name, StaffRow.department, StaffRow.role).where(
            StaffRow.role != "partner",
            or_(StaffRow.left_at.is_(None),
                *time_conditions(StaffRow.left_at, request.model_copy(update={"end": None}),
                                 zone)))
        if department is not None:
            if session.get(DepartmentRow, department) is None:
                raise NotFound(f"no department {department!r} in the staff directory")
            people = people.where(StaffRow.department == department)
        if reach.role == "sales":
            people = people.where(StaffRow.id == reach.owner)
        elif reach.role == "manager":
            people = people.where(StaffRow.department == reach.department)
        # NULLS LAST spelled out: PostgreSQL sorts NULL last ascending, SQLite first.
        staff: dict[str, tuple[str | None, str | None, str]] = {
            sid: (name, dep, role) for sid, name, dep, role in session.execute(
                people.order_by(StaffRow.department.nulls_last(), StaffRow.id))}
        # Everyone's report also lists the ids the figures name but the directory lacks
        # (``require_known_staff`` off): their customers must not vanish from it.
        everyone = department is None and reach.role not in ("sales", "manager")
        directory = set(session.scalars(select(StaffRow.id))) if everyone else set()

        def listed(column: Any) -> Any:
            return column.is_not(None) if everyone else column.in_(list(staff))
        only_project = reach.projects(CustomerProjectRow.project_id) \
            if request.project is not None else []
        link = CustomerProjectRow
        rank = case(*[(link.stage == s, r) for s, r in STAGE_RANK.items()], else_=0)
        owned = {sid: (n, visited, signed) for sid, n, visited, signed in session.execute(
            select(link.owner_staff, func.count(),
                   func.sum(case((rank >= STAGE_RANK["visitor"], 1), else_=0)),
                   func.sum(case((rank >= STAGE_RANK["buyer"], 1), else_=0)))
            .where(listed(link.owner_staff), *only_project)
            .group_by(link.owner_staff))}
        ix = InteractionRow
        period = period_of(ix.occurred_at, request.by, dialect, zone)
        touched = session.execute(
            select(ix.staff, period, func.count(), func.count(distinct(ix.customer_id)),
                   func.coalesce(func.sum(ix.minutes), 0))
            .where(listed(ix.staff), *time_conditions(ix.occurred_at, request, zone),
                   *(reach.projects(ix.project_id) if request.project is not None else []))
            .group_by(ix.staff, period)).all()
        tasks = {sid: (n, late) for sid, n, late in session.execute(
            select(TaskRow.owner_staff, func.count(),
                   func.sum(case((TaskRow.due_at < now, 1), else_=0)))
            .where(listed(TaskRow.owner_staff), TaskRow.status == "open",
                   *(reach.projects(TaskRow.project_id) if request.project is not None
                     else []))
            .group_by(TaskRow.owner_staff))}
    contacts: dict[tuple[str | None, str], tuple[int, int, int]] = {
        (sid, per): (n, people_n, int(minutes or 0))
        for sid, per, n, people_n, minutes in touched}
    unknown = ({*owned, *tasks, *(sid for sid, _ in contacts)} - directory) if everyone \
        else set()
    for sid in sorted(s for s in unknown if s is not None):
        staff[sid] = (None, None, UNKNOWN)
    assert request.start is not None and request.end is not None
    periods = period_labels(request.by, request.start, request.end)
    rows: list[dict[str, Any]] = []
    behind: list[str] = []
    for sid, (name, dep, role) in staff.items():
        n_owned, visited, signed = owned.get(sid, (0, 0, 0))
        n_open, n_late = tasks.get(sid, (0, 0))
        for per in periods:
            n, contacted, minutes = contacts.get((sid, per), (0, 0, 0))
            days = period_days(per, request.by, request.start, request.end) or 0
            target, unit = target_of(role, days, kpi)
            done = contacted if unit == "customers" else minutes / 60
            status = "ok" if done >= target else "behind"
            if status == "behind":
                label = sid if per == "all" else f"{sid} ({per})"
                behind.append(f"{label}: {round(done, 1):g} of {round(target, 1):g} {unit}")
            rows.append({
                "staff": sid, "name": name, "department": dep, "role": role, "period": per,
                "customers_owned": n_owned, "interactions": n, "customers_contacted": contacted,
                "contact_minutes": minutes, "contact_hours": round(minutes / 60, 1),
                "open_followups": n_open, "overdue_followups": int(n_late or 0),
                "conversion": rate(signed, visited), "target": round(target, 1),
                "target_unit": unit, "status": status})
    notes = [f"period {request.start} to {request.end}; targets prorated by days: managers "
             f"{kpi.manager_customers_per_year} customers a year, others "
             f"{kpi.staff_contact_hours_per_quarter:g} hours a quarter",
             "behind: " + "; ".join(behind) if behind else "nobody is behind"]
    return Report(
        name="staff", title="Staff and contact targets", columns=COLUMNS, rows=rows,
        chart=Chart(kind="bar", x="staff", period="period", series=(
            Series(column="customers_contacted"), Series(column="contact_hours"))),
        notes=notes, parameters=parameters_of(request))
