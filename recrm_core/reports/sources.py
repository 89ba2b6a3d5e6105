"""``sources``: per lead source (``customer_projects.source``; none given is
``(none)``), the customers who came in in the period (their link to a project was
made: ``first_seen_at``), how many of them have visited, subscribed and signed a
contract by now (their stage at the project is at least visitor, subscriber, buyer:
a stage reached counts as in :mod:`.funnel`), and the conversions: visited and
signed over all who came in. A cohort, so a recent period's conversion is still
growing. One GROUP BY over the links, no timeline: the stages are on the link.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, select

from ..tables import CustomerProjectRow
from ..values import STAGES
from .aggregates import parameters_of, period_of, rate, reach_of, time_conditions
from .model import Chart, Column, Report, ReportRequest, Series

if TYPE_CHECKING:
    from ..crm import CRM

NONE = "(none)"
COLUMNS = [
    Column(key="source", title="Source"),
    Column(key="period", title="Period"),
    Column(key="customers", title="Customers", kind="int"),
    Column(key="visitors", title="Visited", kind="int"),
    Column(key="subscribers", title="Subscribed", kind="int"),
    Column(key="contracts", title="Signed", kind="int"),
    Column(key="visit_rate", title="Visit rate", kind="percent"),
    Column(key="conversion", title="Conversion", kind="percent"),
]


def run(crm: CRM, request: ReportRequest) -> Report:
    dialect = crm.engine.dialect.name
    zone = crm.config.zone
    link = CustomerProjectRow
    rank = case(*[(link.stage == stage, i) for i, stage in enumerate(STAGES)], else_=0)

    def reached(stage: str) -> Any:
        return func.sum(case((rank >= STAGES.index(stage), 1), else_=0))

    with crm.unit_of_work(request.actor, readonly=True) as uow:
        reach = reach_of(uow.session, "sources", request)
        conditions = reach.projects(link.project_id)
        if reach.role == "sales":
            conditions.append(link.owner_staff == reach.owner)
        source = func.coalesce(link.source, NONE)
        period = period_of(link.first_seen_at, request.by, dialect, zone)
        found = uow.session.execute(
            select(source, period, func.count(), reached("visitor"), reached("subscriber"),
                   reached("buyer"))
            .where(*conditions, *time_conditions(link.first_seen_at, request, zone))
            .group_by(source, period).order_by(source, period)).all()
    rows: list[dict[str, Any]] = [
        {"source": src, "period": per, "customers": n, "visitors": int(v or 0),
         "subscribers": int(s or 0), "contracts": int(c or 0), "visit_rate": rate(v, n),
         "conversion": rate(c, n)}
        for src, per, n, v, s, c in found]
    return Report(
        name="sources", title="Lead sources", columns=COLUMNS, rows=rows,
        chart=Chart(kind="bar", x="source", period="period", series=(
            Series(column="customers"), Series(column="visitors"),
            Series(column="contracts"))),
        notes=["customers who came in in the period, by source; visited, subscribed and "
               "signed: by now"],
        parameters=parameters_of(request))
