"""``funnel``: customers reaching each stage per project and period, the conversion
from the stage before, and the median days between the two.

When a customer reached a stage at a project (there is no stage history table; the
timeline is it):

- ``prospect``: when the link to the project was made (``first_seen_at``);
- ``visitor``: their first ``visit`` at the project; ``subscriber``, ``buyer``,
  ``owner``: their first ``subscription``, ``contract``, ``handover`` there (the stage
  service records these for every step);
- a stage without its event (set by hand, imported) counts at the time of the link's
  last stage change when it is the current stage, else at the time the next stage
  was reached (whoever signed also visited, by then at the latest);
- never later than the next stage (a visit typed in after the contract does not make
  the visit later than the signing); stages past the current one (a forced move back)
  do not count.

A period's row counts the customers whose stage fell in it; the conversion is that
count over the previous stage's count in the same period and project, the days are
between the two stages of the customers counted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import CTE, ColumnElement, Integer, and_, case, func, literal, select, union_all
from sqlalchemy.orm import Session

from ..tables import CustomerProjectRow, InteractionRow
from ..values import STAGES
from .aggregates import (
    Reach,
    parameters_of,
    percentiles,
    period_of,
    project_codes,
    rate,
    reach_of,
    rounded,
    seconds_between,
    time_conditions,
)
from .model import Chart, Column, Report, ReportRequest, Series

if TYPE_CHECKING:
    from ..crm import CRM

#: the interaction recording each stage after ``prospect``
STAGE_EVENTS = {"visitor": "visit", "subscriber": "subscription", "buyer": "contract",
                "owner": "handover"}


def reach_times(reach: Reach) -> CTE:
    """One row per customer-project link within ``reach``: ``customer_id``,
    ``project_id``, ``source``, ``owner_staff``, ``stage_rank`` and ``t0`` .. ``t4``, when
    it reached each stage (NULL: not reached)."""
    link = CustomerProjectRow
    ix = InteractionRow
    first = {stage: func.min(case((ix.kind == kind, ix.occurred_at))).label(stage)
             for stage, kind in STAGE_EVENTS.items()}
    events = (select(ix.customer_id, ix.project_id, *first.values())
              .where(ix.project_id.is_not(None), ix.kind.in_(list(STAGE_EVENTS.values())),
                     *reach.projects(ix.project_id))
              .group_by(ix.customer_id, ix.project_id).subquery("stage_events"))
    rank = case(*[(link.stage == s, i) for i, s in enumerate(STAGES)], else_=0)
    conditions = reach.projects(link.project_id)
    if reach.role == "sales":
        conditions.append(link.owner_staff == reach.owner)
    base = (select(link.customer_id, link.project_id, link.source, link.owner_staff,
                   rank.label("stage_rank"), link.first_seen_at, link.stage_changed_at,
                   *[events.c[s] for s in STAGE_EVENTS])
            .outerjoin(events, and_(events.c.customer_id == link.customer_id,
                                    events.c.project_id == link.project_id))
            .where(*conditions).subquery("links"))
    # t4 first, then each stage from the one after it: one subquery per stage keeps the
    # SQL linear (a nested expression would double with every stage).
    current: Any = base
    carried = ["customer_id", "project_id", "source", "owner_staff", "stage_rank"]
    done: list[str] = []
    for index in range(len(STAGES) - 1, -1, -1):
        c = current.c
        own = c.first_seen_at if index == 0 else c[STAGES[index]]
        at_stage = func.coalesce(own, c.stage_changed_at) if index else c.first_seen_at
        if index == len(STAGES) - 1:
            value: Any = case((c.stage_rank == index, at_stage))
        else:
            later = c[f"t{index + 1}"]
            value = case(
                (c.stage_rank < index, None),
                (c.stage_rank == index, at_stage),
                (own.is_(None), later),
                (own <= later, own), else_=later)
        keep = [c[k] for k in carried] + [c[k] for k in done]
        extra = [c.first_seen_at, c.stage_changed_at,
                 *[c[s] for s in list(STAGE_EVENTS)[:max(index - 1, 0)]]] if index else []
        query = select(*keep, *extra, value.label(f"t{index}"))
        # the last as a CTE: the funnel reads it once per stage, and both databases
        # compute a CTE read more than once only once
        current = query.cte("reach_times") if index == 0 else query.subquery(f"t{index}")
        done.append(f"t{index}")
    return current  # type: ignore[no-any-return]


def steps(reach: Reach, request: ReportRequest, dialect: str, zone: Any) -> CTE:
    """One row per link and stage reached within the request's days: ``project_id``,
    ``stage_rank``, ``period``, ``days`` since the stage before (NULL for prospect)."""
    times = reach_times(reach)
    parts = []
    for index in range(len(STAGES)):
        at = times.c[f"t{index}"]
        days: ColumnElement[Any] = literal(None, Integer) if index == 0 else \
            seconds_between(times.c[f"t{index - 1}"], at, dialect) / 86400.0
        parts.append(select(times.c.project_id, literal(index).label("stage_rank"),
                            period_of(at, request.by, dialect, zone).label("period"),
                            days.label("days"))
                     .where(at.is_not(None), *time_conditions(at, request, zone)))
    return union_all(*parts).cte("steps")


def figures(session: Session, reach: Reach, request: ReportRequest, dialect: str,
            zone: Any) -> dict[tuple[int, str, int], tuple[int, float | None]]:
    """``(project_id, period, stage_rank) -> (customers, median days since the stage
    before)``, in one statement (the steps computed once for both)."""
    found = steps(reach, request, dialect, zone)
    keys = ["project_id", "period", "stage_rank"]
    counts = (select(*[found.c[k] for k in keys], func.count().label("n"))
              .group_by(*[found.c[k] for k in keys]).subquery("counts"))
    medians = percentiles(found, keys, "days", [50]).subquery("medians")
    rows = session.execute(
        select(counts.c.project_id, counts.c.period, counts.c.stage_rank, counts.c.n,
               medians.c.p50)
        .outerjoin(medians, and_(*[medians.c[k] == counts.c[k] for k in keys])))
    return {(pid, period, rank): (n, p50) for pid, period, rank, n, p50 in rows}


COLUMNS = [
    Column(key="project", title="Project"),
    Column(key="period", title="Period"),
    Column(key="stage", title="Stage"),
    Column(key="customers", title="Customers", kind="int"),
    Column(key="conversion", title="From stage before", kind="percent"),
    Column(key="median_days", title="Median days from stage before", kind="days"),
]


def run(crm: CRM, request: ReportRequest) -> Report:
    dialect = crm.engine.dialect.name
    zone = crm.config.zone
    with crm.unit_of_work(request.actor, readonly=True) as uow:
        session = uow.session
        reach = reach_of(session, "funnel", request)
        found = figures(session, reach, request, dialect, zone)
        codes = project_codes(session)
    rows = []
    for pid, period in sorted({(pid, period) for pid, period, _ in found},
                              key=lambda k: (codes.get(k[0], ""), k[1])):
        before: int | None = None
        for index, stage in enumerate(STAGES):
            n, days = found.get((pid, period, index), (0, None))
            rows.append({"project": codes.get(pid), "period": period, "stage": stage,
                         "customers": n,
                         "conversion": rate(n, before) if index else None,
                         "median_days": rounded(days) if index else None})
            before = n
    return Report(
        name="funnel", title="Sales funnel", columns=COLUMNS, rows=rows,
        chart=Chart(kind="funnel", x="stage", series=(Series(column="customers"),),
                    facets=("project", "period")),
        notes=["a stage counts in the period the customer reached it (its first visit, "
               "subscription, contract or handover at the project)"],
        parameters=parameters_of(request))

