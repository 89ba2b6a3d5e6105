"""``recrm channel report``: per agency, project and period, computed in SQL
aggregates; the same figures are the registered report ``channels.commission``
(``recrm report channels.commission``, see :mod:`recrm_channels.reports`).

Registrations made in the period (by ``registered_at``): how many, the refused ones by
reason, the confirmed visits, the converted ones that subscribed and that signed a
contract (the core's subscription / contract interactions at the project after the
confirming visit). Ledger entries in the period (by ``at``): the deal amount of the
deals still standing, the commission accrued (visit, subscription and deal entries)
and clawed back (clawback entries, as a positive sum).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING

from pydantic import BaseModel
from sqlalchemy import ColumnElement, and_, case, exists, func, literal, select

from recrm_core import CRM, Actor, InvalidInput, project_code
from recrm_core.access import require_role
from recrm_core.tables import InteractionRow, ProjectRow

from .service import OFFICE

if TYPE_CHECKING:
    from recrm_core.reports import By
from .tables import CommissionEntryRow, RegistrationRow

ZERO = Decimal("0.00")
#: a refusal's reason, grouped by how it starts
REASONS = (
    ("already registered", "already registered%"),
    ("known customer", "known customer%"),
    ("cooldown", "cooldown%"),
    ("agent over cap", "agent over cap%"),
    ("agency suspended", "agency % is suspended"),
)


class ReportRow(BaseModel):
    agency: str
    project: str
    #: ``2026-03``, ``2026-Q1``, ``2026`` or ``all`` (``by``)
    period: str = "all"
    registrations: int
    rejected: dict[str, int]
    confirmed: int
    subscribed: int
    contracted: int
    deal_amount: Decimal
    accrued: Decimal
    clawed_back: Decimal


def _reason() -> ColumnElement[str]:
    return case(*[(RegistrationRow.reason.like(pattern), literal(label))
                  for label, pattern in REASONS], else_=literal("other"))


def _step(kind: str) -> ColumnElement[bool]:
    return exists().where(
        InteractionRow.customer_id == RegistrationRow.customer_id,
        InteractionRow.kind == kind,
        InteractionRow.project_id == ProjectRow.id,
        ProjectRow.code == RegistrationRow.project,
        InteractionRow.occurred_at >= RegistrationRow.confirmed_at)


def instant(crm: CRM, day: dt.date, *, after: bool = False) -> dt.datetime | None:
    """The start of ``day`` (of the next day with ``after``, for an inclusive last
    day) in the CRM's time zone, as UTC; None (no bound) for a day at the edge of
    the calendar, which has no such instant."""
    try:
        return dt.datetime.combine(day + dt.timedelta(days=int(after)), dt.time(),
                                   crm.config.zone).astimezone(dt.UTC)
    except OverflowError:
        return None


def report(crm: CRM, *, project: str | None = None, start: dt.datetime | None = None,
           end: dt.datetime | None = None, by: By = "all",
           actor: Actor | None = None) -> list[ReportRow]:
    """The figures per (agency, project, period), sorted by the three; ``end`` is
    exclusive; ``by`` is ``month``, ``quarter``, ``year`` or ``all``."""
    # imported here: the command line loads this module at start-up
    from recrm_core.reports.periods import period_label

    require_role(actor, (*OFFICE, "analyst"), "see the channels report")
    code = project_code(project) if project else None
    if code is not None:
        crm.projects.get(code)  # an unknown project is NotFound, not an empty report
    if start is not None and end is not None and start >= end:
        # instants, ``end`` exclusive (the days' rule is reports.periods.check_period)
        raise InvalidInput("to", "the period ends before it starts")
    regs = [RegistrationRow.project == code] if code else []
    if start:
        regs.append(RegistrationRow.registered_at >= start)
    if end:
        regs.append(RegistrationRow.registered_at < end)
    entries = [CommissionEntryRow.project == code] if code else []
    if start:
        entries.append(CommissionEntryRow.at >= start)
    if end:
        entries.append(CommissionEntryRow.at < end)
    converted = RegistrationRow.state == "converted"

    def count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    with crm.unit_of_work(actor, readonly=True) as uow:
        session = uow.session
        dialect = session.get_bind().dialect.name
        reg_period = period_label(RegistrationRow.registered_at, by, dialect)
        entry_period = period_label(CommissionEntryRow.at, by, dialect)
        key = (RegistrationRow.agency, RegistrationRow.project, reg_period)
        # by "all" the period is a constant: not grouped by
        grouped = key if by != "all" else key[:2]
        counts = session.execute(select(
            *key, func.count(),
            count_if(RegistrationRow.confirmed_at.is_not(None)),
            count_if(and_(converted, _step("subscription"))),
            count_if(and_(converted, _step("contract"))),
        ).where(*regs).group_by(*grouped)).all()
        refused = select(*key[:2], reg_period.label("period"), _reason().label("why")).where(
            *regs, RegistrationRow.state == "rejected").subquery()
        rejected = session.execute(select(
            refused.c.agency, refused.c.project, refused.c.period, refused.c.why, func.count())
            .group_by(refused.c.agency, refused.c.project, refused.c.period,
                      refused.c.why)).all()
        reversed_ids = select(CommissionEntryRow.reverses_id).where(
            CommissionEntryRow.reverses_id.is_not(None)).scalar_subquery()
        e = CommissionEntryRow
        money = session.execute(select(
            e.agency, e.project, entry_period,
            func.sum(case((and_(e.kind == "deal", e.id.not_in(reversed_ids)), e.deal_amount),
                          else_=None)),
            func.sum(case((e.kind.in_(("visit", "subscription", "deal")), e.amount),
                          else_=None)),
            func.sum(case((e.kind == "clawback", -e.amount), else_=None)),
        ).where(*entries).group_by(e.agency, e.project,
                                   *([entry_period] if by != "all" else []))).all()
    rows: dict[tuple[str, str, str], ReportRow] = {}

    def row(agency: str, proj: str, period: str) -> ReportRow:
        return rows.setdefault((agency, proj, period), ReportRow(
            agency=agency, project=proj, period=period, registrations=0, rejected={},
            confirmed=0, subscribed=0, contracted=0, deal_amount=ZERO, accrued=ZERO,
            clawed_back=ZERO))

    for agency, proj, period, n, confirmed, subscribed, contracted in counts:
        r = row(agency, proj, period)
        r.registrations, r.confirmed = int(n), int(confirmed)
        r.subscribed, r.contracted = int(subscribed), int(contracted)
    for agency, proj, period, reason, n in rejected:
        row(agency, proj, period).rejected[reason] = int(n)
    for agency, proj, period, deals, accrued, clawed in money:
        r = row(agency, proj, period)
        r.deal_amount = Decimal(deals or 0).quantize(Decimal("0.01"))
        r.accrued = Decimal(accrued or 0).quantize(Decimal("0.01"))
        r.clawed_back = Decimal(clawed or 0).quantize(Decimal("0.01"))
    return [rows[k] for k in sorted(rows)]
