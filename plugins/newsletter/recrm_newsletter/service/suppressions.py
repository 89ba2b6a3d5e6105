"""Suppressions: an address on a channel (normalised, then kept only as a keyed hash)
that no send may reach, and the address a customer is sent to."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from recrm_core import (
    CRM,
    Actor,
    Customer,
    InvalidInput,
    insert_or_ignore,
    normalise_email,
    normalise_mobile,
    require_role,
)

from ..models import Suppression
from ..settings import NAME
from ..tables import SuppressionRow
from .rules import SENDERS, _channel, _Service, aware_utc


def address_hash(crm: CRM, channel: str, address: str) -> str:
    """The keyed hash a suppression or bounce keeps of an address (normalised first)."""
    return crm.keys.keyed_hash(f"{NAME}.{channel}", normalise_address(crm, channel, address))


def normalise_address(crm: CRM, channel: str, address: str) -> str:
    try:
        if channel == "email":
            return normalise_email(address)
        return normalise_mobile(address, crm.config.default_region)
    except Exception as exc:  # IdentityError: a person's typing, not a bug
        raise InvalidInput("address", f"{address!r} is not a valid {channel} address") from exc


def recipient_address(customer: Customer, channel: str) -> str | None:
    if channel == "email":
        return customer.email
    return customer.mobiles[0] if customer.mobiles else None


class _Suppressions(_Service):
    """The suppression list."""

    def suppress(self, channel: str, address: str, reason: str = "manual",
                 at: dt.datetime | None = None, actor: Actor | None = None) -> bool:
        """Suppress ``address`` on ``channel``; False when it already was."""
        require_role(actor, SENDERS, "suppress addresses")
        if reason not in ("manual", "hard_bounce", "complaint", "soft_bounces"):
            raise InvalidInput("reason", f"reason {reason!r} is not one of manual, "
                               "hard_bounce, complaint, soft_bounces")
        digest = address_hash(self.crm, _channel(channel), address)
        with self.crm.unit_of_work(actor) as uow:
            return bool(insert_or_ignore(uow.session, SuppressionRow, {
                "channel": channel, "address_hash": digest, "reason": reason,
                "at": aware_utc(at)}, on=[SuppressionRow.channel, SuppressionRow.address_hash]))

    def suppressions(self, channel: str | None = None) -> list[Suppression]:
        with self.crm.unit_of_work(readonly=True) as uow:
            query = select(SuppressionRow).order_by(SuppressionRow.id)
            if channel is not None:
                query = query.where(SuppressionRow.channel == _channel(channel))
            return [Suppression(channel=r.channel, address_hash=r.address_hash,
                                reason=r.reason, at=r.at) for r in uow.session.scalars(query)]

    def is_suppressed(self, channel: str, address: str) -> bool:
        digest = address_hash(self.crm, _channel(channel), address)
        with self.crm.unit_of_work(readonly=True) as uow:
            return uow.session.scalar(select(SuppressionRow.id).where(
                SuppressionRow.channel == channel,
                SuppressionRow.address_hash == digest)) is not None

