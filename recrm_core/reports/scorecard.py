"""``scorecard``: a balanced scorecard per project (and its departments) for a period,
each figure against its ``[kpi]`` target, with the change from the previous period.

The figures, per project:

- ``nps``, ``csat``, ``l3``: from the survey plugin's registered ``survey.scores``
  report (run for the project and period, ``by=all``; the first row with a value,
  when it has a row per survey); without the plugin: no value, status ``none``;
- complaints per 100 owners: cases of category ``complaint`` opened in the period
  over the customers at stage ``owner`` at the project now, times 100;
- on-time rate and median response hours: as the ``cases`` report computes them for
  the cases opened in the period;
- sales conversion: customers who signed a contract in the period over those who
  first visited in it (the ``funnel`` report's counts).

Higher is better but for complaints and response hours (``ok`` at or below target).

The period: ``--from``/``--to`` (``--to`` defaults to today); the previous period
ends the day before it and is as long: as many whole months when the period is whole
months (March is compared with February), else as many days. Without either, the
last full quarter, compared with the quarter before it.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..errors import InvalidInput
from ..tables import CaseRow, CustomerProjectRow, DepartmentProjectRow, ProjectRow
from . import cases as case_report
from . import funnel
from .aggregates import Reach, parameters_of, reach_of, time_conditions
from .model import Chart, Column, Report, ReportRequest

if TYPE_CHECKING:
    from ..config import KpiSettings
    from ..crm import CRM

#: (key, title, whether lower is better)
METRICS: tuple[tuple[str, str, bool], ...] = (
    ("nps", "NPS", False),
    ("csat", "CSAT", False),
    ("l3", "L3 loyalty", False),
    ("complaints_per_100_owners", "Complaints per 100 owners", True),
    ("on_time_rate", "Cases on time", False),
    ("response_hours", "Median response hours", True),
    ("sales_conversion", "Visit to contract", False),
)
SURVEY_REPORT = "survey.scores"

COLUMNS = [
    Column(key="department", title="Department"),
    Column(key="project", title="Project"),
    Column(key="metric", title="Measure"),
    Column(key="value", title="Value", kind="number"),
    Column(key="target", title="Target", kind="number"),
    Column(key="status", title="Status"),
    Column(key="previous", title="Previous period", kind="number"),
    Column(key="change", title="Change", kind="number"),
]


def periods(request: ReportRequest, zone: dt.tzinfo
            ) -> tuple[tuple[dt.date, dt.date], tuple[dt.date, dt.date]]:
    """The period reported and the one before it, as inclusive days."""
    today = dt.datetime.now(zone).date()
    if request.start is None and request.end is None:
        this_quarter = dt.date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
        end = this_quarter - dt.timedelta(days=1)
        start = dt.date(end.year, (end.month - 1) // 3 * 3 + 1, 1)
        before_end = start - dt.timedelta(days=1)
        before = dt.date(before_end.year, (before_end.month - 1) // 3 * 3 + 1, 1)
        return (start, end), (before, before_end)
    if request.start is None:
        raise InvalidInput("from", "the scorecard compares with the period before: give "
                                   "--from (or neither --from nor --to for the last quarter)")
    start, end = request.start, request.end or today
    if end < start:
        raise InvalidInput("to", f"the period ends ({end}) before it starts ({start})")
    after = end + dt.timedelta(days=1)
    if start.day == 1 and after.day == 1:
        # whole months (a month, a quarter, a year): the same number of months before
        months = (after.year - start.year) * 12 + after.month - start.month
        back = start.year * 12 + start.month - 1 - months
        return (start, end), (dt.date(back // 12, back % 12 + 1, 1),
                              start - dt.timedelta(days=1))
    length = end - start + dt.timedelta(days=1)
    return (start, end), (start - length, start - dt.timedelta(days=1))


def measure(crm: CRM, session: Session, reach: Reach, request: ReportRequest
            ) -> dict[int, dict[str, float | None]]:
    """Every figure but the survey's, per project id, for ``request``'s days."""
    dialect = crm.engine.dialect.name
    zone = crm.config.zone
    whole = request.model_copy(update={"by": "all"})
    found: dict[int, dict[str, float | None]] = {}
    owners = dict(session.execute(
        select(CustomerProjectRow.project_id, func.count())
        .where(CustomerProjectRow.stage == "owner",
               *reach.projects(CustomerProjectRow.project_id))
        .group_by(CustomerProjectRow.project_id)).all())
    complaints = dict(session.execute(
        select(CaseRow.project_id, func.count())
        .where(CaseRow.category == "complaint", CaseRow.project_id.is_not(None),
               *reach.projects(CaseRow.project_id),
               *time_conditions(CaseRow.opened_at, whole, zone))
        .group_by(CaseRow.project_id)).all())
    ids = dict(session.execute(select(ProjectRow.code, ProjectRow.id)).all())
    service = case_report.figures(session, case_report.case_rows(
        reach, whole, "project", dialect, zone))
    steps = funnel.figures(session, reach, whole, dialect, zone)
    for pid in _project_ids(session, reach):
        n_owners = owners.get(pid, 0)
        figures: dict[str, float | None] = {
            "complaints_per_100_owners":
                round(100 * complaints.get(pid, 0) / n_owners, 2) if n_owners else None}
        code = next((c for c, i in ids.items() if i == pid), None)
        cases_here = service.get((code or "", "all"), {})
        figures["on_time_rate"] = cases_here.get("on_time_rate")
        figures["response_hours"] = cases_here.get("median_response_hours")
        visitors = steps.get((pid, "all", 1), (0, None))[0]
        buyers = steps.get((pid, "all", 3), (0, None))[0]
        figures["sales_conversion"] = round(buyers / visitors, 4) if visitors else None
        found[pid] = figures
    return found


def _project_ids(session: Session, reach: Reach) -> list[int]:
    if reach.project_ids is not None:
        return list(reach.project_ids)
    return list(session.scalars(select(ProjectRow.id).order_by(ProjectRow.code)))


def survey(crm: CRM, request: ReportRequest, code: str, days: tuple[dt.date, dt.date]
           ) -> dict[str, float | None] | None:
    """NPS, CSAT and L3 from the survey plugin's report; None without the plugin."""
    if SURVEY_REPORT not in crm.reports.specs():
        return None
    from .model import ReportRequest as Request

    report = crm.reports.run(SURVEY_REPORT, Request(
        actor=request.actor, project=code, start=days[0], end=days[1], by="all"))
    found: dict[str, float | None] = {"nps": None, "csat": None, "l3": None}
    for row in report.rows:
        if row.get("project") not in (None, code):
            continue
        for key in found:
            value = row.get(key)
            if found[key] is None and isinstance(value, int | float) \
                    and not isinstance(value, bool):
                found[key] = float(value)
    return found


def judged(value: float | None, target: float, lower_is_better: bool) -> str:
    if value is None:
        return "none"
    ok = value <= target if lower_is_better else value >= target
    return "ok" if ok else "behind"


def target_of(kpi: KpiSettings, key: str) -> float:
    return float(getattr(kpi, key))


def run(crm: CRM, request: ReportRequest) -> Report:
    if request.by != "all":
        raise InvalidInput("by", "the scorecard is one period against the one before it: "
                                 "choose the period with --from and --to")
    zone = crm.config.zone
    (start, end), (before, before_end) = periods(request, zone)
    now_request = request.model_copy(update={"start": start, "end": end, "by": "all"})
    then_request = request.model_copy(update={"start": before, "end": before_end, "by": "all"})
    with crm.unit_of_work(request.actor, readonly=True) as uow:
        session = uow.session
        reach = reach_of(session, "scorecard", request)
        now = measure(crm, session, reach, now_request)
        then = measure(crm, session, reach, then_request)
        codes = dict(session.execute(select(ProjectRow.id, ProjectRow.code)).all())
        departments: dict[int, list[str]] = {}
        for department, pid in session.execute(
                select(DepartmentProjectRow.department, DepartmentProjectRow.project_id)
                .order_by(DepartmentProjectRow.department)):
            departments.setdefault(pid, []).append(department)
    kpi = crm.config.kpi
    rows: list[dict[str, Any]] = []
    no_survey = False
    for pid, figures in now.items():
        code = codes[pid]
        for days, into in (((start, end), figures), ((before, before_end), then[pid])):
            scores = survey(crm, request, code, days)
            no_survey = scores is None
            into.update(scores or {"nps": None, "csat": None, "l3": None})
        for key, title, lower in METRICS:
            value, previous = figures.get(key), then[pid].get(key)
            target = target_of(kpi, key)
            rows.append({
                "department": ", ".join(departments.get(pid, [])) or None, "project": code,
                "metric": title, "value": value, "target": target,
                "status": judged(value, target, lower), "previous": previous,
                "change": round(value - previous, 4)
                if value is not None and previous is not None else None})
    notes = [f"period {start} to {end}, compared with {before} to {before_end}"]
    if no_survey:
        notes.append("no survey plugin: NPS, CSAT and L3 have no value")
    behind = sorted({f"{r['project']}: {r['metric']}" for r in rows if r["status"] == "behind"})
    if behind:
        notes.append("behind: " + "; ".join(behind))
    return Report(
        name="scorecard", title="Balanced scorecard", columns=COLUMNS, rows=rows,
        chart=Chart(kind="grid", x="metric", group="project"),
        notes=notes, parameters=parameters_of(request))
