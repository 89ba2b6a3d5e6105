"""Hook specifications: messages and their merge fields."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import hookspec

if TYPE_CHECKING:
    from ...crm import CRM
    from ...db import UnitOfWork
    from ...models import (
        Customer,
        DeliveryResult,
        Message,
    )


# -- messages' merge fields ------------------------------------------------------------------


@hookspec
def recrm_message_fields(uow: UnitOfWork,
                         customers: list[Customer]) -> dict[int, dict[str, Any]] | None:
    """Add merge fields to the messages built for these customers (newsletters and
    campaigns, and any plugin building messages from templates).

    Fires when a sender builds a batch of messages (and for a preview or a test
    message), inside a read-only unit of work: read through ``uow.session``, never
    write. Templates reach a plugin's fields under its name, so two plugins never
    clash: the membership plugin's ``{"tier": "金卡"}`` is ``{{ membership.tier }}``.
    A customer you return nothing for gets empty fields (render ``{{
    membership.tier or "业主" }}`` for a fallback)::

        @hookimpl
        def recrm_message_fields(uow, customers):
            rows = uow.session.execute(select(Member.customer_id, Member.tier).where(
                Member.customer_id.in_([c.id for c in customers])))
            return {cid: {"tier": tier} for cid, tier in rows}

    :param uow: a read-only unit of work.
    :param customers: the customers (up to a sender's batch) messages are built for.
    :return: ``{customer id: {field: value}}`` for the customers you have fields
        for (values as templates show them: text or numbers), or ``None``.
    """


# -- messages -------------------------------------------------------------------------


@hookspec(firstresult=True)
def recrm_deliver_message(crm: CRM, message: Message) -> DeliveryResult | None:
    """Deliver one message (email, SMS, ...) through a transport.

    Fires from ``crm.send_message(message)``, once per message.

    ``firstresult``: the first implementation that returns a
    :class:`~recrm_core.models.DeliveryResult` wins; return ``None`` for channels
    you do not handle. The core's console transport runs last and prints the
    message, so something always answers. Called outside any transaction: whatever
    sends in bulk records the message in its outbox first, so a crash never sends
    twice.

    :param crm: the CRM sending.
    :param message: channel, recipient, subject and body.
    """
