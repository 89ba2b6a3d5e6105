"""The 360 view (``recrm_timeline``): each step and change of the customer's deals
(as a party, now or before), and for each active deal what is due next, and when —
an entry dated at the due date ("下次需支付金额和时间")."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from recrm_core import Customer, TimelineEntry, UnitOfWork, utcnow

from .deals import deal_model
from .refs import local_date
from .settings import NAME
from .tables import DealEventRow, DealRow, PartyRow

TITLES = {
    "subscribe": "subscribed (认购)",
    "sign": "contract signed (签约)",
    "handover": "handed over (交房)",
    "cancel": "deal cancelled (退房)",
    "change_unit": "unit changed (换房)",
    "change_buyer": "buyers changed (更名)",
    "schedule": "payment schedule set",
    "area": "measured area recorded (补差)",
}


def timeline_in(uow: UnitOfWork, customer: Customer) -> list[TimelineEntry]:
    session = uow.session
    ids = select(PartyRow.deal_id).where(PartyRow.customer_id == customer.id)
    deals = {d.id: d for d in session.scalars(select(DealRow).where(DealRow.id.in_(ids)))}
    if not deals:
        return []
    today = local_date(uow.crm, utcnow())
    models = {i: deal_model(session, d, today) for i, d in deals.items()}
    entries = []
    for e in session.scalars(select(DealEventRow).where(
            DealEventRow.deal_id.in_(sorted(deals))).order_by(DealEventRow.id)):
        deal = models[e.deal_id]
        entries.append(TimelineEntry(
            at=e.at, kind=f"sales_{e.kind}", source=NAME,
            title=f"{TITLES.get(e.kind, e.kind)}: {deal.unit} (deal {deal.id})",
            data={"deal": deal.id, "unit": deal.unit, "project": deal.project,
                  "reason": e.reason, **e.data}))
    for deal in models.values():
        due = deal.next_due
        if due is None:
            continue
        at = dt.datetime.combine(due.due, dt.time(9), uow.crm.config.zone)
        entries.append(TimelineEntry(
            at=at, kind="sales_payment_due", source=NAME,
            title=f"next payment {'OVERDUE' if due.overdue else 'due'}: {due.outstanding} "
                  f"CNY ({due.kind}) on {due.due.isoformat()} for {deal.unit} "
                  f"(deal {deal.id}); balance {deal.balance}",
            data={"deal": deal.id, "unit": deal.unit, "kind": due.kind,
                  "due": due.due.isoformat(), "amount": str(due.outstanding),
                  "overdue": due.overdue, "balance": str(deal.balance)}))
    return entries
