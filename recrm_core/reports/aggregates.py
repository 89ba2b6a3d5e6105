"""What the core's reports share: who may read what (:func:`reach_of`), the period
(business time zone), durations and percentiles in SQL on SQLite and PostgreSQL.

Percentiles: PostgreSQL has ``percentile_cont``, SQLite has nothing of the kind, so
both run one query with ``ROW_NUMBER()``/``COUNT()`` over each group and pick the
two rows around the wanted rank (``percentile_cont``'s linear interpolation): the
rows stay in the database, only one row per group comes back.

Who reads the core's reports:

- partners never (``Forbidden``);
- admins, analysts and the integrator's code (no actor): everything;
- a manager: the projects of their department (a ``--project`` outside them is
  ``Forbidden``); in the staff report, the staff of their department;
- a consultant (``sales``): their own book only: the funnel and the sources of the
  customers they own, their own row of the staff report; not the service levels or
  the scorecard (``Forbidden``), which are a department's figures;
- ``service``: the service levels of their department's cases; nothing else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import CTE, ColumnElement, Float, Select, case, cast, func, literal, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Subquery

from ..access import scope_of
from ..errors import Forbidden
from ..projects import known_project_id, project_code
from ..tables import DepartmentProjectRow, ProjectRow
from ..tasks import period_conditions
from .model import By, ReportRequest
from .periods import check_period, fold, period_label

#: which roles may run which report (partners none); see the module docstring
READERS: dict[str, tuple[str, ...]] = {
    "funnel": ("admin", "analyst", "manager", "sales"),
    "sources": ("admin", "analyst", "manager", "sales"),
    "cases": ("admin", "analyst", "manager", "service"),
    "staff": ("admin", "analyst", "manager", "sales"),
    "scorecard": ("admin", "analyst", "manager"),
}


@dataclass(frozen=True)
class Reach:
    """What a report may count for its actor, resolved once per run."""

    #: project ids the rows are limited to; None: every project
    project_ids: tuple[int, ...] | None
    #: a consultant's own book: only links they own (and their own staff row)
    owner: str | None = None
    #: a service actor's department, or a manager's (staff report, cases)
    department: str | None = None
    #: whether ``department`` limits the cases (service) or widens them (a manager
    #: also sees the cases of their department at other projects)
    role: str = "admin"

    def projects(self, column: Any) -> list[ColumnElement[bool]]:
        """Conditions limiting ``column`` (a project id) to the reach."""
        if self.project_ids is None:
            return []
        return [column.in_(self.project_ids)] if self.project_ids else [literal(False)]


def reach_of(session: Session, report: str, request: ReportRequest) -> Reach:
    """The actor's reach for ``report``; ``Forbidden`` for a role that may not run it,
    ``UnknownProject`` for an unknown ``--project``."""
    actor = request.actor
    pid: int | None = None
    code: str | None = None
    if request.project is not None:
        code = project_code(request.project)
        pid = known_project_id(session, code)
    if actor is None or actor.role in ("admin", "analyst"):
        return Reach((pid,) if pid is not None else None)
    if actor.role not in READERS[report]:
        raise Forbidden(f"role {actor.role} may not read the {report} report "
                        f"(only {', '.join(READERS[report])})")
    scope = scope_of(session, actor)
    if actor.role == "manager":
        if code is not None and code not in scope.projects:
            raise Forbidden(f"project {code} is not one of department "
                            f"{scope.department or '(none)'}'s projects")
        ids = (pid,) if pid is not None else tuple(session.scalars(
            select(DepartmentProjectRow.project_id)
            .where(DepartmentProjectRow.department == scope.department)))
        return Reach(ids, department=scope.department, role="manager")
    if actor.role == "service":
        return Reach((pid,) if pid is not None else None,
                     department=scope.department or "", owner=actor.staff_id, role="service")
    return Reach((pid,) if pid is not None else None, owner=actor.staff_id, role="sales")


# -- the period ------------------------------------------------------------------------
def time_conditions(column: Any, request: ReportRequest, zone: dt.tzinfo
                    ) -> list[ColumnElement[bool]]:
    """``column`` within the request's days (both included, business time zone)."""
    check_period(request.start, request.end)
    return period_conditions(column, request.start, request.end, zone)


def local_time(column: Any, dialect: str, zone: ZoneInfo) -> Any:
    """``column`` (UTC) as the business zone's wall-clock time, so a month is the
    business's month. SQLite knows no zones: the zone's offset now is added (exact for
    zones without daylight saving, such as China's; elsewhere an event within an hour
    of a month's edge may land in the neighbouring month on SQLite)."""
    if dialect == "postgresql":
        return func.timezone(zone.key, column)
    offset = dt.datetime.now(zone).utcoffset() or dt.timedelta()
    return func.datetime(column, f"{int(offset.total_seconds() // 60):+d} minutes")


def period_of(column: Any, by: By, dialect: str, zone: ZoneInfo) -> ColumnElement[str]:
    """The label (``2026-03``, ``2026-Q1``, ``2026``, ``all``) of the period ``column``
    falls in, in the business time zone."""
    if by == "all":
        return period_label(column, by, dialect)
    return period_label(local_time(column, dialect, zone), by, dialect)


def period_days(label: str, by: By, start: dt.date | None, end: dt.date | None
                ) -> int | None:
    """How many days of the period ``label`` lie within ``start``..``end`` (None:
    unbounded, so no length)."""
    if by == "all":
        lo, hi = start, end
    else:
        year = int(label[:4])
        if by == "year":
            lo, hi = dt.date(year, 1, 1), dt.date(year, 12, 31)
        else:
            first = int(label[5:7]) if by == "month" else (int(label[6]) - 1) * 3 + 1
            last = first if by == "month" else first + 2
            lo = dt.date(year, first, 1)
            hi = (dt.date(year + (last == 12), last % 12 + 1, 1) - dt.timedelta(days=1))
        lo = max(lo, start) if start is not None else lo
        hi = min(hi, end) if end is not None else hi
    if lo is None or hi is None:
        return None
    return max((hi - lo).days + 1, 0)


def period_labels(by: By, start: dt.date, end: dt.date) -> list[str]:
    """Every period's label from ``start`` to ``end``, in order (those without data
    too: a month nobody called anyone is a month they are behind in)."""
    labels: list[str] = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        label = fold(f"{year:04d}-{month:02d}", by)
        if not labels or labels[-1] != label:
            labels.append(label)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return labels


# -- durations and percentiles ---------------------------------------------------------
def seconds_between(start: Any, end: Any, dialect: str) -> ColumnElement[float]:
    """``end - start`` in seconds, in SQL."""
    if dialect == "postgresql":
        return cast(func.extract("epoch", end - start), Float)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def percentiles(source: Subquery | CTE, keys: Sequence[str], value: str,
                percents: Sequence[int]) -> Select[Any]:
    """One row per group of ``keys`` in ``source``: the keys, ``n`` (values that are not
    NULL) and ``p<percent>`` for each of ``percents``, interpolated as PostgreSQL's
    ``percentile_cont`` does. Whole percents only: the rank arithmetic stays in
    integers, the same on both databases."""
    part = [source.c[k] for k in keys]
    v = source.c[value]
    ranked = select(
        *part, v.label("v"),
        (func.row_number().over(partition_by=part, order_by=v) - 1).label("r"),
        func.count().over(partition_by=part).label("n"),
    ).where(v.is_not(None)).subquery("ranked")
    r, n, val = ranked.c.r, ranked.c.n, ranked.c.v
    columns: list[Any] = []
    wanted: list[ColumnElement[bool]] = []
    for p in percents:
        # rank (n - 1) * p / 100: its whole part picks the row, the rest interpolates
        lo_rank = (n - 1) * p // 100
        lo = func.max(_when(r == lo_rank, val))
        hi = func.coalesce(func.max(_when(r == lo_rank + 1, val)), lo)
        fraction = func.max((n - 1) * p % 100) * 0.01
        columns.append((lo + fraction * (hi - lo)).label(f"p{p}"))
        wanted += [r == lo_rank, r == lo_rank + 1]
    return (select(*[ranked.c[k] for k in keys], func.max(n).label("n"), *columns)
            .where(or_(*wanted)).group_by(*[ranked.c[k] for k in keys]))


def _when(condition: ColumnElement[bool], value: Any) -> Any:
    return case((condition, value))


def rate(part: int | None, whole: int | None, digits: int = 4) -> float | None:
    """``part / whole`` rounded, None when there is no whole."""
    if not whole:
        return None
    return round((part or 0) / whole, digits)


def rounded(value: Any, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)


def project_codes(session: Session) -> dict[int, str]:
    return dict(session.execute(select(ProjectRow.id, ProjectRow.code)).all())


def parameters_of(request: ReportRequest) -> dict[str, str]:
    """The options a report ran with, as given (shown with the report)."""
    given = {"project": request.project, "from": request.start, "to": request.end,
             "by": request.by, **request.options}
    return {k: str(v) for k, v in given.items() if v is not None}
