"""Privacy requests: what the sales tables hold about one person, and its erasure.

The tables hold customer ids, never a name, mobile or ID number. A person's deals (as
any party), holds and tickets are exported with the deal history, schedule and
receipts. Erasure deletes their holds (a hold is no record anyone must keep) and
removes the free-text reasons of their deals' history and the receipts' references
(typed by people, they may name them); the deals, parties, tickets, schedules and
receipts stay without identifiers but the erased customer's id (sale contracts and
payments are accounting records kept for the legally required period, 会计档案管理办法).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from recrm_core import Customer, ErasureStep, UnitOfWork, utcnow
from recrm_core.privacy import PersonValues, merged_into, redact_in

from .deals import deal_model
from .refs import local_date
from .tables import DealEventRow, DealRow, HoldRow, PartyRow, ReceiptRow, TicketRow
from .tickets import ticket_model


def _deal_ids(uow: UnitOfWork, ids: list[int]) -> list[int]:
    return list(uow.session.scalars(select(PartyRow.deal_id).where(
        PartyRow.customer_id.in_(ids)).distinct().order_by(PartyRow.deal_id)))


def export_in(uow: UnitOfWork, customer: Customer) -> dict[str, Any] | None:
    session = uow.session
    today = local_date(uow.crm, utcnow())
    # With the records merged into them: a merge made before recrm_customer_merged
    # moved these rows left them on the merged-away id, which the erasure covers too.
    ids = [customer.id, *merged_into(session, customer.id)]
    deals = [deal_model(session, session.get_one(DealRow, i), today).model_dump(mode="json")
             for i in _deal_ids(uow, ids)]
    holds = [{"unit_id": h.unit_id, "state": h.state, "held_at": h.held_at.isoformat(),
              "expires_at": h.expires_at.isoformat()}
             for h in session.scalars(select(HoldRow).where(
                 HoldRow.customer_id.in_(ids)).order_by(HoldRow.id))]
    tickets = [ticket_model(t).model_dump(mode="json") for t in session.scalars(
        select(TicketRow).where(TicketRow.customer_id.in_(ids)).order_by(TicketRow.id))]
    if not (deals or holds or tickets):
        return None
    return {"deals": deals, "holds": holds, "tickets": tickets}


def erase_in(uow: UnitOfWork, customer: Customer, merged_ids: list[int]) -> list[ErasureStep]:
    session = uow.session
    ids = [customer.id, *merged_ids]
    held = list(session.scalars(select(HoldRow).where(HoldRow.customer_id.in_(ids))))
    for h in held:
        session.delete(h)
    holds = len(held)
    deal_ids = _deal_ids(uow, ids)
    events = list(session.scalars(select(DealEventRow).where(
        DealEventRow.deal_id.in_(deal_ids), DealEventRow.reason.is_not(None))))
    for e in events:
        e.reason = None
    receipts = list(session.scalars(select(ReceiptRow).where(
        ReceiptRow.deal_id.in_(deal_ids), ~ReceiptRow.ref.startswith("erased-"))))
    # Other people's deals stay, without the words that name the person (a friend who
    # paid, a reason naming a new buyer): left, the verification would roll the erasure
    # back, and no command edits them.
    needles = PersonValues.of(customer, names=False)
    mentioned = len(redact_in(session, DealEventRow.reason, needles,
                              DealEventRow.deal_id.not_in(deal_ids)))
    if needles:
        receipts += [r for r in session.scalars(select(ReceiptRow).where(
            ReceiptRow.deal_id.not_in(deal_ids), ~ReceiptRow.ref.startswith("erased-")))
            if needles.named_in(r.ref)]
    for r in receipts:  # a reference typed by a cashier may name the payer
        r.ref = f"erased-{r.id}"  # unique per deal, as references must be
    session.flush()
    steps = []
    if holds:
        steps.append(ErasureStep(table=HoldRow.__tablename__, deleted=holds))
    if events:
        steps.append(ErasureStep(table=DealEventRow.__tablename__, anonymised=len(events),
                                 basis="the deal's history kept without the reasons typed"))
    if mentioned:
        steps.append(ErasureStep(table=DealEventRow.__tablename__, anonymised=mentioned,
                                 basis="other deals' history kept, their words naming the "
                                 "person redacted"))
    if receipts:
        steps.append(ErasureStep(table=ReceiptRow.__tablename__, anonymised=len(receipts),
                                 basis="payments kept for the accounts without the typed "
                                 "references"))
    if deal_ids:
        steps.append(ErasureStep(table=DealRow.__tablename__, retained=len(deal_ids),
                                 basis="sale contracts and payments are accounting records "
                                 "(会计档案管理办法): kept by customer id only"))
    return steps
