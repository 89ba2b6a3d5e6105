"""The 360 view (``recrm_timeline``): each step and change of the customer's deals
while they were a party, naming the unit it happened on, and for each active deal they
are a party to now what is due next, and when — an entry dated at the due date
("下次需支付金额和时间")."""

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
    """The customer's deal history while they were a party (a co-buyer removed by a
    change of buyer keeps the history up to that change), each line naming the unit it
    happened on; and what is due next only on the deals they are a party to now."""
    session = uow.session
    spans: dict[int, list[tuple[dt.datetime, dt.datetime | None]]] = {}
    for deal_id, added, removed in session.execute(
            select(PartyRow.deal_id, PartyRow.added_at, PartyRow.removed_at).where(
                PartyRow.customer_id == customer.id)):
        spans.setdefault(deal_id, []).append((added, removed))
    if not spans:
        return []
    deals = {d.id: d for d in session.scalars(select(DealRow).where(DealRow.id.in_(spans)))}
    today = local_date(uow.crm, utcnow())
    models = {i: deal_model(session, d, today) for i, d in deals.items()}

    def was_party(deal_id: int, at: dt.datetime) -> bool:
        return any(added <= at and (removed is None or at <= removed)
                   for added, removed in spans[deal_id])

    entries = []
    unit_now: dict[int, str] = {}  # each deal's unit as its history goes
    for e in session.scalars(select(DealEventRow).where(
            DealEventRow.deal_id.in_(sorted(deals))).order_by(DealEventRow.id)):
        deal = models[e.deal_id]
        if e.kind == "subscribe" and isinstance(e.data.get("unit"), str):
            unit_now[e.deal_id] = e.data["unit"]
        unit = where = unit_now.get(e.deal_id, deal.unit)
        if e.kind == "change_unit":
            unit = str(e.data.get("old", unit))
            unit_now[e.deal_id] = str(e.data.get("new", deal.unit))
            where = f"{unit} → {unit_now[e.deal_id]}"
        if not was_party(e.deal_id, e.at):
            continue
        entries.append(TimelineEntry(
            at=e.at, kind=f"sales_{e.kind}", source=NAME,
            title=f"{TITLES.get(e.kind, e.kind)}: {where} (deal {deal.id})",
            data={"deal": deal.id, "unit": unit, "project": deal.project,
                  "reason": e.reason, **e.data}))
    for deal in models.values():
        due = deal.next_due
        if due is None or not any(removed is None for _, removed in spans[deal.id]):
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
