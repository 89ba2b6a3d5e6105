"""The club's figures per project and period, computed in SQL, and the two reports
registered with ``recrm_reports``: ``membership.points`` and ``membership.referrals``.

``recrm member report`` (:meth:`~recrm_membership.Membership.report`) takes its
points totals and its referrals per project from the same two functions
(:func:`points_by_period`, :func:`referrals_by_period`), so the command and the
registered reports cannot drift.

- Points: a ledger entry counts in the period of ``occurred_at`` (when the event
  happened: a back-dated contract earns in its month) at its ``project`` (none for
  a redemption or an adjustment that named none). *Earned* is every credit that is
  not a merge's duplicate; *redeemed*, *expired* and *deducted* (negative
  adjustments) the debits; *net* their signed sum; *balance* the outstanding points
  at the end of the period (every entry before it, too).
- Referrals: a referral counts in the period it was made (``created_at``), at its
  project; *converted* of those, the referred customer signed; *rewarded* the
  referrer got the points; *withheld* another plugin withheld them
  (``recrm_withhold_referral_reward``). Superseded referrals (left behind by a
  merge) do not count.

Who sees what: the figures are aggregates with no customer in them, but they are
the club's reports: the same roles as ``recrm member report`` (a partner is
refused).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from recrm_core.access import require_role
from recrm_core.reports import (
    By,
    Chart,
    Column,
    ReportRequest,
    ReportSpec,
    Series,
)
from recrm_core.reports import Report as Table
from recrm_core.reports.periods import check_period, period_label

from .service import READERS, WITHHELD
from .service.club import _rate as rate
from .tables import LedgerRow, ReferralRow

if TYPE_CHECKING:
    from recrm_core import CRM

class PointsLine(BaseModel):
    """Points movements at one project (None: entries naming none) in one period."""

    project: str | None
    period: str
    earned: int = 0
    redeemed: int = 0
    expired: int = 0
    deducted: int = 0
    net: int = 0
    balance: int = 0


class ReferralLine(BaseModel):
    """Referrals made at one project in one period, and what became of them."""

    project: str
    period: str
    made: int = 0
    converted: int = 0
    rewarded: int = 0
    withheld: int = 0
    #: converted / made, ``None`` when none were made
    conversion_rate: float | None = None


def bounds(crm: CRM, start: dt.date | None, end: dt.date | None
           ) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The inclusive days as the instants ``[start, end + 1 day)``, the days of the
    CRM's time zone (as ``survey scores`` and ``channel report`` take them). A day
    at the edge of the calendar bounds nothing."""
    check_period(start, end)

    def instant(day: dt.date | None, after: bool) -> dt.datetime | None:
        if day is None:
            return None
        try:
            return dt.datetime.combine(day + dt.timedelta(days=int(after)), dt.time(),
                                       crm.config.zone).astimezone(dt.UTC)
        except OverflowError:
            return None

    return instant(start, False), instant(end, True)


def _sum(expression: Any) -> Any:
    return func.coalesce(func.sum(expression), 0)


def points_by_period(session: Session, *, project: str | None = None,
                     lo: dt.datetime | None = None, hi: dt.datetime | None = None,
                     by: By = "all") -> list[PointsLine]:
    """Points earned, redeemed, expired and deducted per project and period (entries
    from ``lo`` to before ``hi``), with the balance at the end of each; sorted by
    project (None first) and period."""
    label = period_label(LedgerRow.occurred_at, by, session.get_bind().dialect.name)
    # by "all" the label is a constant: neither grouped nor ordered by
    group = [LedgerRow.project] if by == "all" else [LedgerRow.project, label]
    points = LedgerRow.points
    net = func.sum(points)
    query = select(
        LedgerRow.project, label,
        _sum(case((((points > 0) & LedgerRow.duplicate_of.is_(None)), points), else_=0)),
        _sum(case((LedgerRow.kind == "redeem", -points), else_=0)),
        _sum(case((LedgerRow.kind == "expire", -points), else_=0)),
        _sum(case(((LedgerRow.kind == "adjust") & (points < 0), -points), else_=0)),
        func.coalesce(net, 0),
        # the running total within the project: the balance at each period's end
        # (plus what came before ``start``, added below)
        func.coalesce(func.sum(net).over(partition_by=LedgerRow.project,
                                         order_by=group[1:] or None), 0),
    ).group_by(*group)
    opening: dict[str | None, int] = {}
    if project is not None:
        query = query.where(LedgerRow.project == project)
    if lo is not None:
        before = select(LedgerRow.project, func.sum(points)).where(
            LedgerRow.occurred_at < lo).group_by(LedgerRow.project)
        if project is not None:
            before = before.where(LedgerRow.project == project)
        opening = {p: int(n or 0) for p, n in session.execute(before)}
        query = query.where(LedgerRow.occurred_at >= lo)
    if hi is not None:
        query = query.where(LedgerRow.occurred_at < hi)
    lines = [
        PointsLine(project=p, period=str(period), earned=int(e), redeemed=int(r),
                   expired=int(x), deducted=int(d), net=int(n),
                   balance=int(b) + opening.get(p, 0))
        for p, period, e, r, x, d, n, b in session.execute(query)
    ]
    return sorted(lines, key=lambda line: (line.project is not None, line.project or "",
                                           line.period))


def referrals_by_period(session: Session, *, project: str | None = None,
                        lo: dt.datetime | None = None, hi: dt.datetime | None = None,
                        by: By = "all") -> list[ReferralLine]:
    """Referrals made (from ``lo`` to before ``hi``), converted, rewarded and
    withheld per project and period (of the referral), sorted by project and
    period."""
    label = period_label(ReferralRow.created_at, by, session.get_bind().dialect.name)

    def count(condition: Any) -> Any:
        return _sum(case((condition, 1), else_=0))

    query = (
        select(ReferralRow.project, label, func.count(),
               count(ReferralRow.status == "converted"),
               count(ReferralRow.reward_entry_id.is_not(None)),
               count((ReferralRow.status == "converted")
                     & ReferralRow.note.startswith(WITHHELD, autoescape=True)))
        .where(ReferralRow.status != "superseded")
        .group_by(*([ReferralRow.project] if by == "all" else [ReferralRow.project, label]))
    )
    if project is not None:
        query = query.where(ReferralRow.project == project)
    if lo is not None:
        query = query.where(ReferralRow.created_at >= lo)
    if hi is not None:
        query = query.where(ReferralRow.created_at < hi)
    lines = [
        ReferralLine(project=str(p), period=str(period), made=int(m), converted=int(c),
                     rewarded=int(r), withheld=int(w), conversion_rate=rate(int(c), int(m)))
        for p, period, m, c, r, w in session.execute(query)
    ]
    return sorted(lines, key=lambda line: (line.project, line.period))


# -- the registered reports ---------------------------------------------------------------


def _read(crm: CRM, request: ReportRequest,
          compute: Callable[..., list[Any]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Run ``compute`` as ``request.actor`` (the club's readers only) for the
    request's project (the core's check: an unknown one is UnknownProject), days and
    period; the rows and the parameters the report ran with."""
    require_role(request.actor, READERS, "see membership reports")
    project = None if request.project is None else crm.projects.get(request.project).code
    lo, hi = bounds(crm, request.start, request.end)
    with crm.unit_of_work(request.actor, readonly=True) as uow:
        lines = compute(uow.session, project=project, lo=lo, hi=hi, by=request.by)
    parameters: dict[str, str] = {"by": request.by}
    for key, value in (("project", project), ("from", request.start), ("to", request.end)):
        if value is not None:
            parameters[key] = str(value)
    return [line.model_dump() for line in lines], parameters


POINTS_COLUMNS = [
    Column(key="project", title="Project"),
    Column(key="period", title="Period"),
    Column(key="earned", title="Earned", kind="int"),
    Column(key="redeemed", title="Redeemed", kind="int"),
    Column(key="expired", title="Expired", kind="int"),
    Column(key="deducted", title="Deducted", kind="int"),
    Column(key="net", title="Net", kind="int"),
    Column(key="balance", title="Balance", kind="int"),
]

REFERRAL_COLUMNS = [
    Column(key="project", title="Project"),
    Column(key="period", title="Period"),
    Column(key="made", title="Made", kind="int"),
    Column(key="converted", title="Converted", kind="int"),
    Column(key="rewarded", title="Rewarded", kind="int"),
    Column(key="withheld", title="Withheld", kind="int"),
    Column(key="conversion_rate", title="Conversion", kind="percent"),
]


def run_points(crm: CRM, request: ReportRequest) -> Table:
    rows, parameters = _read(crm, request, points_by_period)
    return Table(
        name="membership.points", title="Membership points", columns=POINTS_COLUMNS,
        rows=rows, parameters=parameters,
        chart=Chart(kind="bar", x="period", group="project", period="period",
                    series=(Series(column="earned"), Series(column="redeemed"),
                            Series(column="expired"))),
        notes=["a line without a project holds the entries naming none (redemptions, "
               "adjustments); balance: the points outstanding at the period's end"],
    )


def run_referrals(crm: CRM, request: ReportRequest) -> Table:
    rows, parameters = _read(crm, request, referrals_by_period)
    return Table(
        name="membership.referrals", title="Referrals (老带新)", columns=REFERRAL_COLUMNS,
        rows=rows, parameters=parameters,
        chart=Chart(kind="bar", x="project", period="period",
                    series=(Series(column="made"), Series(column="converted"),
                            Series(column="rewarded"))),
        notes=["each referral counts in the period it was made; converted: the "
               "referred customer signed for the project"],
    )


SPECS = (
    ReportSpec(name="membership.points", title="Membership points",
               description="points earned, redeemed, expired and deducted per project "
                           "and period, with the balance at each period's end",
               roles=READERS, run=run_points),
    ReportSpec(name="membership.referrals", title="Referrals",
               description="referrals made, converted, rewarded and withheld per "
                           "project and period, with the conversion rate",
               roles=READERS, run=run_referrals),
)

__all__ = ["SPECS", "PointsLine", "ReferralLine", "points_by_period",
           "referrals_by_period", "run_points", "run_referrals"]
