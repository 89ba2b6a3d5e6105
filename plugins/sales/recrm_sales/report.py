"""``recrm sales report``: the sales-control table (units by state per building),
sell-through, deal amount, average price per ㎡ and receivables (the deal amount and
receivables are those of the registered report ``sales.deals``, see
:mod:`recrm_sales.reports`)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal

from sqlalchemy import select

from recrm_core import CRM, Actor, require_role, utcnow

from .inventory import UNIT_STATES, units_in
from .models import BuildingLine, SalesReport
from .money import CENT, ZERO
from .refs import READERS, local_date
from .reports import deal_lines_in
from .tables import ACTIVE_DEAL_STATES, BuildingRow, DealRow, UnitRow

SOLD = ("subscribed", "contracted", "handed_over")


def report(crm: CRM, *, project: str | None = None, actor: Actor | None = None,
           now: dt.datetime | None = None) -> SalesReport:
    require_role(actor, READERS, "read the sales report")
    at = now or utcnow()
    today = local_date(crm, at)
    # UnknownProject ("no such project", exit 1, 404) rather than a report of zeros
    code = crm.projects.get(project).code if project else None
    with crm.unit_of_work(actor, readonly=True) as uow:
        session = uow.session
        query = select(UnitRow, BuildingRow.code).join(
            BuildingRow, BuildingRow.id == UnitRow.building_id).order_by(
            UnitRow.project, BuildingRow.code)
        deals = select(DealRow).where(DealRow.state.in_(ACTIVE_DEAL_STATES))
        if code:
            query = query.where(UnitRow.project == code)
            deals = deals.where(DealRow.project == code)
        units = units_in(session, session.execute(query).all(), at)
        active = list(session.scalars(deals))
        # the deal amount and receivables of the registered report sales.deals: one
        # computation, so `sales report` and `recrm report sales.deals` cannot drift
        lines = deal_lines_in(session, crm.config.zone, today, project=code)
    per: dict[tuple[str, str], Counter[str]] = {}
    for u in units:
        per.setdefault((u.project, u.building), Counter())[u.status] += 1
    buildings = [BuildingLine(project=p, building=b, units=sum(c.values()),
                              states={s: c[s] for s in UNIT_STATES})
                 for (p, b), c in per.items()]
    for_sale = sum(1 for u in units if u.status != "withheld")
    sold = sum(1 for u in units if u.status in SOLD)
    area = {u.id: u.gross_area for u in units}
    amount = sum((line.deal_amount for line in lines), ZERO)
    sold_area = sum((area.get(d.unit_id, ZERO) for d in active), ZERO)
    return SalesReport(
        project=code, buildings=buildings, units=len(units), for_sale=for_sale, sold=sold,
        sell_through_percent=(Decimal(sold * 100) / for_sale).quantize(CENT) if for_sale
        else ZERO,
        deal_amount=amount,
        average_price_per_m2=(amount / sold_area).quantize(CENT) if sold_area else None,
        signing_overdue=sum(1 for d in active if d.state == "subscribed"
                            and today > d.sign_by),
        receivables_due=sum((line.receivables_due for line in lines), ZERO),
        receivables_overdue=sum((line.receivables_overdue for line in lines), ZERO),
    )
