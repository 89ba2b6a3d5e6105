"""``cases``: service levels of the cases opened in the period, grouped by department
(default), category, intake channel or project, optionally per period (of opening).

- on-time rate: cases resolved by their SLA due time over the cases decided: resolved,
  or still open past their due time (an open case not yet due is not decided yet);
  a reopened case is judged on its last resolution against its renewed due time;
- resolution hours: opening to (last) resolution, median and 90th percentile;
- response hours: opening to the first thing the case's assignee did on it (the first
  entry of its history by the assignee: a start, a resolution, a transfer, an
  escalation; the opening, routing and notices are not theirs), median;
- reopen rate: cases reopened at least once over the cases ever resolved;
- escalations: cases moved up a level at least once, and all the moves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import CTE, ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session

from ..cases import ACTIVE
from ..db import utcnow
from ..errors import InvalidInput
from ..tables import CaseHistoryRow, CaseRow, ProjectRow
from .aggregates import (
    Reach,
    parameters_of,
    percentiles,
    period_of,
    rate,
    reach_of,
    rounded,
    seconds_between,
    time_conditions,
)
from .model import Chart, Column, Report, ReportRequest, Series

if TYPE_CHECKING:
    from ..crm import CRM

GROUPS = ("department", "category", "channel", "project")
#: history entries nobody on the case did: not a response
NOT_A_RESPONSE = ("open", "route", "notify")
NONE = "(none)"


def case_rows(reach: Reach, request: ReportRequest, group: str, dialect: str, zone: Any,
              conditions: list[ColumnElement[bool]] | None = None) -> CTE:
    """One row per case opened in the period: ``grp``, ``period``, its flags and its
    ``resolution``/``response`` seconds."""
    c = CaseRow
    h = CaseHistoryRow
    counted = (select(h.case_id,
                      func.sum(case((h.action == "reopen", 1), else_=0)).label("reopens"),
                      func.sum(case((h.action == "escalate", 1), else_=0)).label("escalations"),
                      func.sum(case((h.action == "resolve", 1), else_=0)).label("resolutions"))
               .group_by(h.case_id).subquery("counted"))
    responded = (select(h.case_id, func.min(h.at).label("at"))
                 .join(c, c.id == h.case_id)
                 .where(h.actor_staff == c.assignee, h.action.not_in(NOT_A_RESPONSE))
                 .group_by(h.case_id).subquery("responded"))
    grp: Any = {"department": func.coalesce(c.department, NONE),
                "category": c.category, "channel": c.channel,
                "project": func.coalesce(ProjectRow.code, NONE)}[group]
    where = [*time_conditions(c.opened_at, request, zone), *(conditions or [])]
    where += _reach_conditions(reach, widen=request.project is None)
    now = utcnow()
    decided = or_(c.resolved_at.is_not(None), and_(c.status.in_(ACTIVE), c.sla_due_at < now))
    return (select(
        grp.label("grp"), period_of(c.opened_at, request.by, dialect, zone).label("period"),
        case((decided, 1), else_=0).label("decided"),
        case((c.resolved_at <= c.sla_due_at, 1), else_=0).label("on_time"),
        case((c.resolved_at.is_not(None), 1), else_=0).label("resolved"),
        case((func.coalesce(counted.c.resolutions, 0) > 0, 1), else_=0).label("ever_resolved"),
        case((func.coalesce(counted.c.reopens, 0) > 0, 1), else_=0).label("reopened"),
        case((func.coalesce(counted.c.escalations, 0) > 0, 1), else_=0).label("escalated"),
        func.coalesce(counted.c.escalations, 0).label("escalations"),
        (seconds_between(c.opened_at, c.resolved_at, dialect) / 3600.0).label("resolution"),
        (seconds_between(c.opened_at, responded.c.at, dialect) / 3600.0).label("response"),
    ).select_from(c)
        .outerjoin(ProjectRow, ProjectRow.id == c.project_id)
        .outerjoin(counted, counted.c.case_id == c.id)
        .outerjoin(responded, responded.c.case_id == c.id)
        .where(*where).cte("case_rows"))


def _reach_conditions(reach: Reach, widen: bool) -> list[ColumnElement[bool]]:
    if reach.role == "service":
        mine = [CaseRow.assignee == reach.owner]
        if reach.department:
            mine.append(CaseRow.department == reach.department)
        return [or_(*mine), *reach.projects(CaseRow.project_id)]
    if reach.role == "manager" and widen and reach.project_ids is not None \
            and reach.department:
        # their projects' cases, and their department's cases wherever they are (unless
        # they asked for one project)
        return [or_(*reach.projects(CaseRow.project_id), CaseRow.department == reach.department)]
    return reach.projects(CaseRow.project_id)


def figures(session: Session, rows: CTE) -> dict[tuple[str, str], dict[str, Any]]:
    """``(group, period) -> figures`` of :func:`case_rows`, in one statement (the case
    rows computed once for the counts and both percentiles)."""
    r = rows.c
    totals = select(
        r.grp, r.period, func.count().label("n"), func.sum(r.decided).label("decided"),
        func.sum(r.on_time).label("on_time"), func.sum(r.resolved).label("resolved"),
        func.sum(r.ever_resolved).label("ever"), func.sum(r.reopened).label("reopened"),
        func.sum(r.escalated).label("escalated"), func.sum(r.escalations).label("moves"),
    ).group_by(r.grp, r.period).subquery("totals")
    keys = ["grp", "period"]
    resolution = percentiles(rows, keys, "resolution", [50, 90]).subquery("resolution")
    response = percentiles(rows, keys, "response", [50]).subquery("response")
    t = totals.c
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for row in session.execute(
            select(t.grp, t.period, t.n, t.decided, t.on_time, t.resolved, t.ever,
                   t.reopened, t.escalated, t.moves, resolution.c.p50, resolution.c.p90,
                   response.c.p50.label("response"))
            .outerjoin(resolution, and_(*[resolution.c[k] == t[k] for k in keys]))
            .outerjoin(response, and_(*[response.c[k] == t[k] for k in keys]))):
        found[(row.grp, row.period)] = {
            "cases": row.n, "resolved": int(row.resolved or 0),
            "on_time_rate": rate(row.on_time, row.decided),
            "median_resolution_hours": rounded(row.p50),
            "p90_resolution_hours": rounded(row.p90),
            "median_response_hours": rounded(row.response),
            "reopen_rate": rate(row.reopened, row.ever),
            "escalated": int(row.escalated or 0), "escalations": int(row.moves or 0)}
    return found


COLUMNS_AFTER = [
    Column(key="period", title="Period"),
    Column(key="cases", title="Cases opened", kind="int"),
    Column(key="resolved", title="Resolved", kind="int"),
    Column(key="on_time_rate", title="On time", kind="percent"),
    Column(key="median_resolution_hours", title="Median resolution", kind="hours"),
    Column(key="p90_resolution_hours", title="90% resolved within", kind="hours"),
    Column(key="median_response_hours", title="Median response", kind="hours"),
    Column(key="reopen_rate", title="Reopened", kind="percent"),
    Column(key="escalated", title="Escalated cases", kind="int"),
    Column(key="escalations", title="Escalations", kind="int"),
]
TITLES = {"department": "Department", "category": "Category", "channel": "Intake channel",
          "project": "Project"}


def run(crm: CRM, request: ReportRequest) -> Report:
    group = request.options.get("group") or "department"
    if group not in GROUPS:
        raise InvalidInput("group", f"group {group!r} is not one of {', '.join(GROUPS)}")
    dialect = crm.engine.dialect.name
    zone = crm.config.zone
    with crm.unit_of_work(request.actor, readonly=True) as uow:
        reach = reach_of(uow.session, "cases", request)
        found = figures(uow.session, case_rows(reach, request, group, dialect, zone))
    rows: list[dict[str, Any]] = []
    for (grp, period), values in sorted(found.items()):
        rows.append({group: grp, "period": period, "cases": values["cases"],
                     "resolved": values["resolved"], "on_time_rate": values["on_time_rate"],
                     "median_resolution_hours": values.get("median_resolution_hours"),
                     "p90_resolution_hours": values.get("p90_resolution_hours"),
                     "median_response_hours": values.get("median_response_hours"),
                     "reopen_rate": values["reopen_rate"], "escalated": values["escalated"],
                     "escalations": values["escalations"]})
    return Report(
        name="cases", title="Service levels",
        columns=[Column(key=group, title=TITLES[group]), *COLUMNS_AFTER], rows=rows,
        chart=Chart(kind="bar", x=group, period="period", series=(
            Series(column="median_resolution_hours"),
            Series(column="median_response_hours"))),
        notes=["cases opened in the period; on time: resolved by the SLA due time, "
               "of those resolved or already overdue"],
        parameters=parameters_of(request) | {"group": group})

