"""``newsletter.sends``: the figures of ``recrm newsletter campaign status NAME`` for every
send started in the period, one line each, registered with ``recrm_reports``.

Each line is :meth:`~recrm_newsletter.service.Newsletter.report_in`, the function
behind ``campaign status``, so the two cannot drift. *Delivered* is sent less
bounced. A send counts by the day it started (the CRM's time zone); drafts and
sends not yet started have no line. ``--by`` labels each line with the month,
quarter or year its start day falls in (``all`` by default), as the period column
of the other reports. Like ``campaign status``, the figures are
counts with no customer in them, read by every role.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import select

from recrm_core.reports import Chart, Column, Report, ReportRequest, ReportSpec, Series
from recrm_core.reports.periods import check_period, fold

from .service import Newsletter
from .tables import SendRow

if TYPE_CHECKING:
    from recrm_core import CRM

NAME = "newsletter.sends"

COLUMNS = [
    Column(key="send", title="Send"),
    Column(key="period", title="Period"),
    Column(key="channel", title="Channel"),
    Column(key="started", title="Started", kind="date"),
    Column(key="state", title="State"),
    Column(key="audience", title="Audience", kind="int"),
    Column(key="sent", title="Sent", kind="int"),
    Column(key="delivered", title="Delivered", kind="int"),
    Column(key="bounced", title="Bounced", kind="int"),
    Column(key="unsubscribed", title="Unsubscribed", kind="int"),
    Column(key="failed", title="Failed", kind="int"),
    Column(key="skipped", title="Skipped", kind="int"),
    Column(key="pending", title="Pending", kind="int"),
]


def _instant(crm: CRM, day: dt.date | None, after: bool) -> dt.datetime | None:
    """The start of ``day`` (of the next with ``after``) in the CRM's zone, as UTC;
    None for a day at the calendar's edge, which bounds nothing."""
    if day is None:
        return None
    try:
        return dt.datetime.combine(day + dt.timedelta(days=int(after)), dt.time(),
                                   crm.config.zone).astimezone(dt.UTC)
    except OverflowError:
        return None


def run(crm: CRM, request: ReportRequest) -> Report:
    check_period(request.start, request.end)
    lo, hi = _instant(crm, request.start, False), _instant(crm, request.end, True)
    query = select(SendRow).where(SendRow.started_at.is_not(None)).order_by(
        SendRow.started_at, SendRow.id)
    if lo is not None:
        query = query.where(SendRow.started_at >= lo)
    if hi is not None:
        query = query.where(SendRow.started_at < hi)
    zone = crm.config.zone
    with crm.unit_of_work(request.actor, readonly=True) as uow:
        found = [Newsletter.report_in(uow.session, row) for row in uow.session.scalars(query)]
    rows = []
    for r in found:
        assert r.send.started_at is not None  # selected so
        started = r.send.started_at.astimezone(zone).date()
        rows.append({
            # the period of the local day it started, the day ``started`` shows
            "send": r.send.name, "period": fold(f"{started:%Y-%m}", request.by),
            "channel": r.send.channel, "state": r.send.state, "started": started,
            "audience": r.audience, "sent": r.sent, "delivered": r.sent - r.bounced,
            "bounced": r.bounced, "unsubscribed": r.unsubscribed, "failed": r.failed,
            "skipped": sum(r.skipped.values()), "pending": r.pending,
        })
    parameters: dict[str, str] = {"by": request.by}
    for key, value in (("from", request.start), ("to", request.end)):
        if value is not None:
            parameters[key] = str(value)
    return Report(
        name=NAME, title="Newsletter sends", columns=COLUMNS, rows=rows,
        parameters=parameters,
        chart=Chart(kind="bar", x="send",
                    series=(Series(column="delivered"), Series(column="bounced"),
                            Series(column="unsubscribed"))),
    )


SPEC = ReportSpec(
    name=NAME, title="Newsletter sends",
    description="per campaign or issue started in the period: audience, sent, "
                "delivered, bounced, unsubscribed, failed and skipped "
                "(recrm newsletter campaign status)",
    standard=("from", "to", "by"),
    run=run,
)

__all__ = ["NAME", "SPEC", "run"]
