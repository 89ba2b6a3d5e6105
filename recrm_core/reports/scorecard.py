"""``scorecard``: a balanced scorecard per project and department, one row per period,
each figure against its ``[kpi]`` target, with the change from the period before.

Rows, per project and period:

- ``all``: the project as a whole, answered for by its departments together (the
  staff directory's departments serving it, named in the cell): satisfaction and
  loyalty (``nps``, ``csat``, ``l3`` from the survey plugin's registered
  ``survey.scores`` report, run for the project and period; without the plugin: no
  value), sales conversion (of the customers who first visited in the period, the share
  who have signed a contract since), and the service figures of
  all the project's cases;
- one row per department that handled cases of the project (the case's department:
  the service centre's routing, transfers and escalations decide it), in either the
  period or the one before: complaints per 100 owners (its complaints opened in the
  period over the project's owners now, times 100: the departments' figures add up to
  the project's), on-time rate and median response hours, as the ``cases`` report
  computes them for the cases opened in the period.

One ``[kpi]`` target per measure, the same for every department; its column's title
says it. Higher is better but for complaints and response hours (``ok`` at or below
target). ``status``: ``behind`` when any measure is behind, ``ok`` when every measure
with a value meets its target, ``none`` without any value; ``behind`` names them and
``changes`` gives each measure's change from the period before.

The periods: with ``--by all`` (the default) one period, ``--from``/``--to``
(``--to`` defaults to today), against the period before it, which ends the day
before and is as long: as many whole months when the period is whole months (March
is compared with February), else as many days; without either, the last full
quarter. With ``--by month|quarter|year``: every whole such period the days
``--from``..``--to`` touch (default: the last four full ones), each against the one
before it.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..errors import InvalidInput
from ..tables import CaseRow, CustomerProjectRow, DepartmentProjectRow, ProjectRow
from . import cases as case_report
from . import funnel
from .aggregates import Reach, parameters_of, rate, reach_of, time_conditions
from .cells import show
from .model import Chart, Column, Report, ReportRequest, Series
from .periods import check_period

if TYPE_CHECKING:
    from ..config import KpiSettings
    from ..crm import CRM

#: (key, title, column kind, whether lower is better)
METRICS: tuple[tuple[str, str, str, bool], ...] = (
    ("nps", "NPS", "number", False),
    ("csat", "CSAT", "percent", False),
    ("l3", "L3 loyalty", "percent", False),
    ("complaints_per_100_owners", "Complaints per 100 owners", "number", True),
    ("on_time_rate", "Cases on time", "percent", False),
    ("response_hours", "Median response", "hours", True),
    ("sales_conversion", "Visit to contract", "percent", False),
)
#: the measures a department's row holds (the others are the whole project's)
DEPARTMENT_METRICS = ("complaints_per_100_owners", "on_time_rate", "response_hours")
SURVEY_REPORT = "survey.scores"
#: the department cell of a project's own row
WHOLE = "all"
#: how many full periods ``--by`` shows without ``--from``/``--to``
DEFAULT_PERIODS = 4

Figures = dict[str, float | None]


def columns(kpi: KpiSettings) -> list[Column]:
    """The table's columns; each measure's title names its target."""
    measures = [Column(key=key, title=f"{title} ({'≤' if lower else '≥'} "
                                      f"{show(target_of(kpi, key), kind)})", kind=kind)
                for key, title, kind, lower in METRICS]
    return [Column(key="project", title="Project"), Column(key="department",
                                                           title="Department"),
            Column(key="period", title="Period"), *measures,
            Column(key="status", title="Status"), Column(key="behind", title="Behind"),
            Column(key="changes", title="Change from the period before")]


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
    check_period(start, end)
    after = end + dt.timedelta(days=1)
    if start.day == 1 and after.day == 1:
        # whole months (a month, a quarter, a year): the same number of months before
        months = (after.year - start.year) * 12 + after.month - start.month
        back = start.year * 12 + start.month - 1 - months
        return (start, end), (dt.date(back // 12, back % 12 + 1, 1),
                              start - dt.timedelta(days=1))
    length = end - start + dt.timedelta(days=1)
    return (start, end), (start - length, start - dt.timedelta(days=1))


def by_periods(request: ReportRequest, zone: dt.tzinfo) -> list[tuple[str, dt.date, dt.date]]:
    """``--by month|quarter|year``: (label, first day, last day) of every whole period
    the request's days touch, oldest first, the one before the first leading (it is
    compared with, not shown)."""
    by = request.by
    today = dt.datetime.now(zone).date()
    step = {"month": 1, "quarter": 3, "year": 12}[by]

    def first_of(day: dt.date) -> int:  # months since year 0 of the period's start
        months = day.year * 12 + day.month - 1
        return months - (months % step if by != "year" else day.month - 1)

    if request.start is None and request.end is None:
        last = first_of(today) - step  # the last full period
        first = last - (DEFAULT_PERIODS - 1) * step
    else:
        end = request.end or today
        if request.start is None:
            raise InvalidInput("from", "give --from with --to (or neither: the last "
                                       f"{DEFAULT_PERIODS} full periods)")
        check_period(request.start, end)
        first, last = first_of(request.start), first_of(end)
    found: list[tuple[str, dt.date, dt.date]] = []
    for months in range(first - step, last + 1, step):
        lo = dt.date(months // 12, months % 12 + 1, 1)
        after = months + step
        hi = dt.date(after // 12, after % 12 + 1, 1) - dt.timedelta(days=1)
        found.append((period_label_of(lo, by), lo, hi))
    return found


def period_label_of(day: dt.date, by: str) -> str:
    """The label of the period ``day`` starts, as the other reports write it."""
    from .periods import fold

    return fold(f"{day.year:04d}-{day.month:02d}", by)  # type: ignore[arg-type]


def measure(crm: CRM, session: Session, reach: Reach, request: ReportRequest
            ) -> dict[tuple[int, str], Figures]:
    """Every figure but the survey's for ``request``'s days, per (project id,
    department): :data:`WHOLE` for the project's own row."""
    dialect = crm.engine.dialect.name
    zone = crm.config.zone
    whole = request.model_copy(update={"by": "all"})
    owners = dict(session.execute(
        select(CustomerProjectRow.project_id, func.count())
        .where(CustomerProjectRow.stage == "owner",
               *reach.projects(CustomerProjectRow.project_id))
        .group_by(CustomerProjectRow.project_id)).all())
    department = func.coalesce(CaseRow.department, case_report.NONE)
    complaints: dict[tuple[int, str], int] = {
        (cast(int, pid), dep): n for pid, dep, n in session.execute(
            select(CaseRow.project_id, department, func.count())
            .where(CaseRow.category == "complaint", CaseRow.project_id.is_not(None),
                   *reach.projects(CaseRow.project_id),
                   *time_conditions(CaseRow.opened_at, whole, zone))
            .group_by(CaseRow.project_id, department))}
    codes = dict(session.execute(select(ProjectRow.id, ProjectRow.code)).all())
    service = case_report.figures(session, case_report.case_rows(
        reach, whole, "project", dialect, zone))
    signed = _visitors_who_signed(session, reach, whole, zone)
    found: dict[tuple[int, str], Figures] = {}
    for pid in _project_ids(session, reach):
        n_owners = owners.get(pid, 0)

        def per_100(n: int) -> float | None:
            return round(100 * n / n_owners, 2) if n_owners else None  # noqa: B023

        here = service.get((codes.get(pid, ""), "all"), {})
        found[(pid, WHOLE)] = {
            "complaints_per_100_owners": per_100(sum(
                n for (p, _), n in complaints.items() if p == pid)),
            "on_time_rate": here.get("on_time_rate"),
            "response_hours": here.get("median_response_hours"),
            "sales_conversion": signed.get(pid)}
        # The departments that handled the project's cases, one query per project:
        # the case report's own rows, limited to it.
        by_department = case_report.figures(session, case_report.case_rows(
            reach, whole, "department", dialect, zone,
            conditions=[CaseRow.project_id == pid]))
        for (dep, _), figures in by_department.items():
            found[(pid, dep)] = {
                "complaints_per_100_owners": per_100(complaints.get((pid, dep), 0)),
                "on_time_rate": figures.get("on_time_rate"),
                "response_hours": figures.get("median_response_hours")}
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


def _visitors_who_signed(session: Session, reach: Reach, whole: Any, zone: Any
                         ) -> dict[int, float | None]:
    """Per project: of the customers whose first visit fell in the period, the share
    who have signed a contract since (a cohort, so never above 100%, unlike the
    funnel's flow of contracts over visits within one period)."""
    times = funnel.reach_times(reach)
    visited = times.c.t1
    rows = session.execute(
        select(times.c.project_id, func.count(), func.count(times.c.t3))
        .where(visited.is_not(None), *time_conditions(visited, whole, zone))
        .group_by(times.c.project_id))
    return {pid: rate(n_signed, n) for pid, n, n_signed in rows}


def judged(value: float | None, target: float, lower_is_better: bool) -> str:
    if value is None:
        return "none"
    ok = value <= target if lower_is_better else value >= target
    return "ok" if ok else "behind"


def target_of(kpi: KpiSettings, key: str) -> float:
    return float(getattr(kpi, key))


def run(crm: CRM, request: ReportRequest) -> Report:
    zone = crm.config.zone
    try:
        if request.by == "all":
            (start, end), (before, before_end) = periods(request, zone)
            spans = [("before", before, before_end), ("all", start, end)]
            notes = [f"period {start} to {end}, compared with {before} to {before_end}"]
        else:
            spans = by_periods(request, zone)
            notes = [f"{request.by}s {spans[1][0]} to {spans[-1][0]} (whole periods), each "
                     f"compared with the one before"]
    except (OverflowError, ValueError):
        # The period before year 1, or the day after 9999-12-31: as the other reports
        # refuse a day no database keeps (InvalidInput is no ValueError: it passes).
        field, day = (("to", request.end) if request.end is not None
                      and request.end.year == dt.MAXYEAR else ("from", request.start))
        raise InvalidInput(field, f"{day} is outside the dates a database keeps") from None
    kpi = crm.config.kpi
    with crm.unit_of_work(request.actor, readonly=True) as uow:
        session = uow.session
        reach = reach_of(session, "scorecard", request)
        measured = [measure(crm, session, reach, request.model_copy(
            update={"start": lo, "end": hi, "by": "all"})) for _, lo, hi in spans]
        codes = dict(session.execute(select(ProjectRow.id, ProjectRow.code)).all())
        serving: dict[int, list[str]] = {}
        for dep, pid in session.execute(
                select(DepartmentProjectRow.department, DepartmentProjectRow.project_id)
                .order_by(DepartmentProjectRow.department)):
            serving.setdefault(pid, []).append(dep)
    no_survey = SURVEY_REPORT not in crm.reports.specs()
    for (_, lo, hi), figures in zip(spans, measured, strict=True):
        for (pid, dep), values in figures.items():
            if dep == WHOLE:
                values.update(survey(crm, request, codes[pid], (lo, hi))
                              or {"nps": None, "csat": None, "l3": None})
    # every (project, department) seen in any period, the project's own row first
    units = sorted({unit for figures in measured for unit in figures},
                   key=lambda u: (codes[u[0]], u[1] != WHOLE, u[1]))
    rows: list[dict[str, Any]] = []
    behind_notes: list[str] = []
    for n in range(1, len(spans)):
        label = spans[n][0]
        for pid, dep in units:
            now = measured[n].get((pid, dep), {})
            then = measured[n - 1].get((pid, dep), {})
            keys = [k for k, *_ in METRICS if dep == WHOLE or k in DEPARTMENT_METRICS]
            if dep != WHOLE and all(now.get(k) is None for k in keys) \
                    and all(then.get(k) is None for k in keys):
                continue
            row = scored(kpi, now, then, keys)
            where = f"{codes[pid]} {dep}" if dep != WHOLE else codes[pid]
            if row["behind"]:
                behind_notes.append(
                    f"{where}{'' if label == 'all' else f' ({label})'}: {row['behind']}")
            rows.append({"project": codes[pid],
                         "department": dep if dep != WHOLE
                         else f"{WHOLE} ({', '.join(serving.get(pid, [])) or '-'})",
                         "period": label, **row})
    if no_survey:
        notes.append("no survey plugin: NPS, CSAT and L3 have no value")
    notes.append("department all: the whole project; the other rows: the departments "
                 "that handled its cases")
    notes.append("behind: " + "; ".join(behind_notes) if behind_notes
                 else "nobody is behind")
    return Report(
        name="scorecard", title="Balanced scorecard", columns=columns(kpi), rows=rows,
        # a cell per department (rows) and project (columns), or period with --by
        # (one project's, with --project: several would share a cell)
        chart=Chart(kind="grid", x="period" if request.by != "all" else "project",
                    group="department",
                    series=tuple(Series(column=k) for k, *_ in METRICS)),
        notes=notes, parameters=parameters_of(request))


def scored(kpi: KpiSettings, now: Figures, then: Figures, keys: list[str]
           ) -> dict[str, Any]:
    """One row's measures (``keys``), its status, what is behind and the changes."""
    row: dict[str, Any] = {}
    behind: list[str] = []
    changes: list[str] = []
    judged_any = False
    for key, title, kind, lower in METRICS:
        if key not in keys:
            row[key] = None  # the whole project's measure: on its own row
            continue
        value, previous = now.get(key), then.get(key)
        row[key] = value
        status = judged(value, target_of(kpi, key), lower)
        judged_any = judged_any or status != "none"
        if status == "behind":
            behind.append(title)
        if value is not None and previous is not None:
            change = round(value - previous, 4)
            # a share's change reads in percentage points
            text = f"{change * 100:+.1f} pts" if kind == "percent" else f"{change:+g}"
            changes.append(f"{title} {text}")
    row["status"] = "behind" if behind else "ok" if judged_any else "none"
    row["behind"] = ", ".join(behind) or None
    row["changes"] = "; ".join(changes) or None
    return row
