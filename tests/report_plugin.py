"""A plugin registering a report through ``recrm_reports``, as a plugin author would,
and the small company it reports on (shared by the reports' output and API tests).

``leadstats.sources``: customers per lead source (and period), how many came past
the prospect stage, the visit rate; aggregated in SQL, honouring ``--project``,
``--from``/``--to`` (on the day the customer was first seen at the project) and
``--by``, with its own option ``--min-customers``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import case, func, select, update

from recrm_core import CRM, hookimpl
from recrm_core.reports import Chart, Column, Report, ReportOption, ReportRequest, ReportSpec
from recrm_core.reports import Series as ChartSeries
from recrm_core.reports.periods import day_range, period_label
from recrm_core.tables import CustomerProjectRow, ProjectRow

TITLE = "线索来源 Lead sources"
NOTE = "来访率 = 来访 / 客户 (visited / customers)"

#: (name, mobile, project, source, first seen (UTC, noon in Shanghai), stage)
PEOPLE = [
    ("王伟", "13800000001", "XL2", "抖音", dt.datetime(2026, 1, 10, 4, tzinfo=dt.UTC), "visitor"),
    ("李娜", "13800000002", "XL2", "抖音", dt.datetime(2026, 1, 20, 4, tzinfo=dt.UTC), None),
    ("张敏", "13800000003", "XL2", "中介", dt.datetime(2026, 2, 5, 4, tzinfo=dt.UTC), "visitor"),
    ("刘洋", "13800000004", "HP1", "抖音", dt.datetime(2026, 2, 15, 4, tzinfo=dt.UTC), None),
    ("陈静", "13800000005", "XL2", "老带新", dt.datetime(2026, 3, 1, 4, tzinfo=dt.UTC),
     "subscriber"),
    ("周杰", "13800000006", "XL2", "老带新", dt.datetime(2026, 3, 20, 4, tzinfo=dt.UTC), None),
]


def seed(crm: CRM) -> None:
    """The six customers above, each first seen on their day."""
    for name, mobile, project, source, seen, stage in PEOPLE:
        cid = crm.customers.add({"name": name, "mobile": mobile, "project": project,
                                 "source": source}).customer.id
        if stage is not None:
            crm.customers.set_stage(cid, stage, project)
        with crm.unit_of_work() as uow:
            uow.session.execute(update(CustomerProjectRow)
                                .where(CustomerProjectRow.customer_id == cid)
                                .values(first_seen_at=seen))


def lead_sources(crm: CRM, request: ReportRequest) -> Report:
    link = CustomerProjectRow
    with crm.unit_of_work(request.actor, readonly=True) as uow:
        period = period_label(link.first_seen_at, request.by, uow.session.bind.dialect.name)
        customers = func.count()
        visited = func.sum(case((link.stage != "prospect", 1), else_=0))
        query = (select(period.label("period"), link.source, customers, visited)
                 .join(ProjectRow, ProjectRow.id == link.project_id)
                 .group_by(period, link.source)
                 .having(customers >= int(request.options["min_customers"]))
                 .order_by(period, customers.desc(), func.min(link.id)))
        lo, hi = day_range(request.start, request.end)
        zone = crm.config.zone
        if lo is not None:
            query = query.where(link.first_seen_at >= lo.replace(tzinfo=zone))
        if hi is not None:
            query = query.where(link.first_seen_at < hi.replace(tzinfo=zone))
        if request.project is not None:
            query = query.where(ProjectRow.code == request.project)
        rows = [{"period": p, "source": s, "customers": c, "visited": v,
                 "visit_rate": v / c if c else None}
                for p, s, c, v in uow.session.execute(query)]
    return Report(
        name="leadstats.sources", title=TITLE,
        columns=[Column(key="period", title="期间 period"),
                 Column(key="source", title="来源 source"),
                 Column(key="customers", title="客户 customers", kind="int"),
                 Column(key="visited", title="来访 visited", kind="int"),
                 Column(key="visit_rate", title="来访率 visit rate", kind="percent")],
        rows=rows, notes=[NOTE],
        chart=Chart(kind="bar", x="source", series=(ChartSeries(column="customers"),
                                                    ChartSeries(column="visited"))))


class LeadStats:
    """The plugin: one report."""

    name = "leadstats"

    @hookimpl
    def recrm_reports(self, register: Callable[[ReportSpec], None]) -> None:
        register(ReportSpec(
            name="leadstats.sources", title="Lead sources (plugin)",
            description="customers and visits per lead source",
            options=(ReportOption(name="min_customers", kind="int", default="1",
                                  help="leave out sources with fewer customers"),),
            run=lead_sources))


#: what ``leadstats.sources`` gives for the company above, all projects, all time
ALL_ROWS: list[dict[str, Any]] = [
    {"period": "all", "source": "抖音", "customers": 3, "visited": 1, "visit_rate": 1 / 3},
    {"period": "all", "source": "老带新", "customers": 2, "visited": 1, "visit_rate": 0.5},
    {"period": "all", "source": "中介", "customers": 1, "visited": 1, "visit_rate": 1.0},
]
