"""Deals, money received and receivables per project and period, and the report
``sales.deals`` registered with ``recrm_reports``.

``recrm sales report`` (:func:`~recrm_sales.report.report`) takes its deal amount
and receivables from :func:`deal_lines_in`, the function behind ``sales.deals``, so
the two cannot drift.

- *Deals*: the deals standing (subscribed, contracted or handed over; a cancelled
  one no longer counts) by the period they were subscribed in; *contracted* of
  them, those signed; *deal amount* their contract totals (the subscribed amount
  until signed). Deals are counted and summed in SQL.
- *Received*: receipts of those standing deals by the day they were received.
- *Receivables*: what is outstanding on their payment schedules (receipts paid
  oldest first, :func:`~recrm_sales.payments.receivables_in`) by the period the
  line falls due, split into not yet due and overdue as of today.

Days are the company's (the CRM's time zone), as every sales command takes them.
Who sees what: the sales report's readers (the office and analysts).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from recrm_core import require_role, utcnow
from recrm_core.reports import (
    By,
    Chart,
    Column,
    Report,
    ReportRequest,
    ReportSpec,
    Series,
)
from recrm_core.reports.periods import check_period, fold, period_label

from .money import CENT, ZERO
from .payments import receivables_in
from .refs import READERS, local_date
from .tables import ACTIVE_DEAL_STATES, DealRow, ReceiptRow

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from recrm_core import CRM

NAME = "sales.deals"


class DealLine(BaseModel):
    """One project in one period."""

    project: str
    period: str
    deals: int = 0
    contracted: int = 0
    deal_amount: Decimal = ZERO
    received: Decimal = ZERO
    receivables_due: Decimal = ZERO
    receivables_overdue: Decimal = ZERO


def _instant(day: dt.date | None, zone: ZoneInfo, after: bool) -> dt.datetime | None:
    """The start of ``day`` (of the next with ``after``) in ``zone``, as UTC; None for
    a day at the calendar's edge, which bounds nothing."""
    if day is None:
        return None
    try:
        return dt.datetime.combine(day + dt.timedelta(days=int(after)), dt.time(),
                                   zone).astimezone(dt.UTC)
    except OverflowError:
        return None


def deal_lines_in(session: Session, zone: ZoneInfo, today: dt.date, *,
                  project: str | None = None, start: dt.date | None = None,
                  end: dt.date | None = None, by: By = "all") -> list[DealLine]:
    """The lines per project and period (``start``/``end`` inclusive days), sorted
    by project and period."""
    check_period(start, end)
    dialect = session.get_bind().dialect.name
    standing = DealRow.state.in_(ACTIVE_DEAL_STATES)
    lines: dict[tuple[str, str], DealLine] = {}

    def line(proj: str, period: str) -> DealLine:
        return lines.setdefault((proj, period), DealLine(project=proj, period=period))

    # deals by the period they were subscribed in
    label = period_label(DealRow.subscribed_at, by, dialect)
    deals = select(
        DealRow.project, label, func.count(),
        func.sum(case((DealRow.state != "subscribed", 1), else_=0)),
        func.sum(func.coalesce(DealRow.total, DealRow.amount)),
    ).where(standing).group_by(DealRow.project, *([label] if by != "all" else []))
    lo, hi = _instant(start, zone, False), _instant(end, zone, True)
    if project is not None:
        deals = deals.where(DealRow.project == project)
    if lo is not None:
        deals = deals.where(DealRow.subscribed_at >= lo)
    if hi is not None:
        deals = deals.where(DealRow.subscribed_at < hi)
    for proj, period, n, signed, total in session.execute(deals):
        target = line(proj, period)
        target.deals, target.contracted = int(n), int(signed or 0)
        target.deal_amount = Decimal(total or 0).quantize(CENT)
    # receipts by the day they were received
    label = period_label(ReceiptRow.received_on, by, dialect)
    receipts = (
        select(DealRow.project, label, func.sum(ReceiptRow.amount))
        .join(DealRow, DealRow.id == ReceiptRow.deal_id).where(standing)
        .group_by(DealRow.project, *([label] if by != "all" else []))
    )
    if project is not None:
        receipts = receipts.where(DealRow.project == project)
    if start is not None:
        receipts = receipts.where(ReceiptRow.received_on >= start)
    if end is not None:
        receipts = receipts.where(ReceiptRow.received_on <= end)
    for proj, period, total in session.execute(receipts):
        line(proj, period).received = Decimal(total or 0).quantize(CENT)
    # receivables by the period they fall due (paid oldest first: the schedule's rule)
    for owed in receivables_in(session, today, project=project):
        if (start is not None and owed.due < start) or (end is not None and owed.due > end):
            continue
        target = line(owed.project, fold(f"{owed.due:%Y-%m}", by))
        if owed.overdue:
            target.receivables_overdue += owed.outstanding
        else:
            target.receivables_due += owed.outstanding
    return [lines[k] for k in sorted(lines)]


# -- the registered report ----------------------------------------------------------------

COLUMNS = [
    Column(key="project", title="Project"),
    Column(key="period", title="Period"),
    Column(key="deals", title="Units sold", kind="int"),
    Column(key="contracted", title="Contracted", kind="int"),
    Column(key="deal_amount", title="Deal amount", kind="money"),
    Column(key="received", title="Received", kind="money"),
    Column(key="receivables_due", title="Receivable", kind="money"),
    Column(key="receivables_overdue", title="Overdue", kind="money"),
]


def run(crm: CRM, request: ReportRequest) -> Report:
    require_role(request.actor, READERS, "read the sales report")
    project = None if request.project is None else crm.projects.get(request.project).code
    today = local_date(crm, utcnow())
    with crm.unit_of_work(request.actor, readonly=True) as uow:
        found = deal_lines_in(uow.session, crm.config.zone, today, project=project,
                              start=request.start, end=request.end, by=request.by)
    parameters: dict[str, str] = {"by": request.by}
    for key, value in (("project", project), ("from", request.start), ("to", request.end)):
        if value is not None:
            parameters[key] = str(value)
    rows: list[dict[str, Any]] = [line.model_dump() for line in found]
    return Report(
        name=NAME, title="Sales: deals, receipts and receivables", columns=COLUMNS,
        rows=rows, parameters=parameters,
        chart=Chart(kind="bar", x="period", group="project", period="period",
                    series=(Series(column="deal_amount"), Series(column="received"))),
        notes=[f"deals counted when subscribed; receivables by the day they fall due, "
               f"overdue as of {today}"],
    )


SPEC = ReportSpec(
    name=NAME, title="Deals and receivables",
    description="units sold, contracts signed, the deal amount, money received and "
                "receivables (due and overdue) per project and period",
    roles=READERS,  # as ``sales report``
    run=run,
)

__all__ = ["NAME", "SPEC", "DealLine", "deal_lines_in", "run"]
