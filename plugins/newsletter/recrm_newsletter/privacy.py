"""Privacy requests: what the newsletter tables hold about one person, and its erasure.

List memberships and outbox rows are found by customer id. Erasure deletes the list
memberships and anonymises the outbox rows (the customer link removed; the send, the
state and the dates kept, so a send's figures stay true). Suppressions and bounces
hold only keyed hashes of addresses and are kept on purpose: an erased person must
stay unsubscribed if their address comes back (docs/privacy.md); they name nobody.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update

from recrm_core import Customer, ErasureStep, UnitOfWork

from .service import address_hash
from .tables import ListMemberRow, ListRow, RecipientRow, SendRow, SuppressionRow


def export_in(uow: UnitOfWork, customer: Customer) -> dict[str, Any] | None:
    session = uow.session
    lists = list(session.scalars(
        select(ListRow.name).join(ListMemberRow, ListMemberRow.list_id == ListRow.id)
        .where(ListMemberRow.customer_id == customer.id).order_by(ListRow.name)))
    messages = [
        {"send": name, "channel": r.channel, "state": r.state, "reason": r.reason,
         "message_id": r.message_id, "sent_at": r.sent_at.isoformat() if r.sent_at else None}
        for r, name in session.execute(
            select(RecipientRow, SendRow.name).join(SendRow, SendRow.id == RecipientRow.send_id)
            .where(RecipientRow.customer_id == customer.id).order_by(RecipientRow.id))]
    addresses = [("email", customer.email)] if customer.email else []
    addresses += [("sms", m) for m in customer.mobiles]
    suppressed = []
    for channel, address in addresses:
        row = session.scalar(select(SuppressionRow).where(
            SuppressionRow.channel == channel,
            SuppressionRow.address_hash == address_hash(uow.crm, channel, address)))
        if row is not None:
            suppressed.append({"channel": channel, "address": address, "reason": row.reason,
                               "at": row.at.isoformat()})
    if not (lists or messages or suppressed):
        return None
    return {"lists": lists, "messages": messages, "suppressions": suppressed}


def erase_in(uow: UnitOfWork, customer: Customer, merged_ids: list[int]) -> list[ErasureStep]:
    ids = [customer.id, *merged_ids]
    session = uow.session
    members = session.execute(delete(ListMemberRow).where(ListMemberRow.customer_id.in_(ids))
                              .execution_options(synchronize_session=False))
    outbox = session.execute(update(RecipientRow).where(RecipientRow.customer_id.in_(ids))
                             .values(customer_id=None)
                             .execution_options(synchronize_session=False))
    steps = []
    if members.rowcount:  # type: ignore[attr-defined]
        steps.append(ErasureStep(table=ListMemberRow.__tablename__,
                                 deleted=members.rowcount))  # type: ignore[attr-defined]
    if outbox.rowcount:  # type: ignore[attr-defined]
        steps.append(ErasureStep(
            table=RecipientRow.__tablename__, anonymised=outbox.rowcount,  # type: ignore[attr-defined]
            basis="a send's figures: the send, state and dates kept without the person"))
    return steps


def merged_in(uow: UnitOfWork, survivor_id: int, duplicate_id: int) -> None:
    """The duplicate's list memberships follow the survivor (its outbox rows stay:
    they record what was sent to whom)."""
    session = uow.session
    survivor_lists = select(ListMemberRow.list_id).where(
        ListMemberRow.customer_id == survivor_id).scalar_subquery()
    session.execute(update(ListMemberRow)
                    .where(ListMemberRow.customer_id == duplicate_id,
                           ListMemberRow.list_id.not_in(survivor_lists))
                    .values(customer_id=survivor_id)
                    .execution_options(synchronize_session=False))
    session.execute(delete(ListMemberRow).where(ListMemberRow.customer_id == duplicate_id)
                    .execution_options(synchronize_session=False))
