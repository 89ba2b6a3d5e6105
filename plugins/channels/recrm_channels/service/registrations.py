"""A stored registration read as of a time (what a sweep would write), as the
API returns it, and the refusal that carries one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from recrm_core import Actor, Refused, mask_mobile, mask_name
from recrm_core.access import NEVER_FULL
from recrm_core.customers import load_customers

from ..models import Registration
from ..tables import RegistrationRow

if TYPE_CHECKING:
    from recrm_core import CRM


class RegistrationRefused(Refused):
    """A registration was refused; it is stored (state ``rejected``) as ``registration``."""

    def __init__(self, registration: Registration) -> None:
        super().__init__(f"registration {registration.id} refused: {registration.reason}")
        self.registration = registration


def as_of(row: RegistrationRow, now: dt.datetime) -> tuple[str, str | None, dt.datetime | None]:
    """The stored state read at ``now``: a window or a protection that ran out since
    the last write reads as expired or released (what a sweep would write)."""
    if row.state == "pending" and now > row.valid_until:
        return "expired", "no visit within the registration window", row.valid_until
    if row.state == "confirmed" and row.protected_until and now > row.protected_until:
        return ("released", "protection ran out without a subscription or contract",
                row.protected_until)
    return row.state, row.reason, row.ended_at


def shown_in_full(crm: CRM, session: Session, actor: Actor | None,
                  customer_ids: Iterable[int | None]) -> set[int]:
    """Of the customers ``customer_ids`` name, those a read shows ``actor`` in full: the
    core's rule (``crm.access``), so that a registration's mobile and name show as the
    customer's own do (a consultant: their own customers; a manager: masked until they
    disclose the customer; partners and analysts never). A registration with no
    customer yet is shown in full to admins only."""
    ids = sorted({cid for cid in customer_ids if cid is not None})
    if actor is None or actor.role == "admin":
        return set(ids)
    if actor.role in NEVER_FULL or not ids:
        return set()
    found = load_customers(session, ids)
    full = {c.id for c in crm.access.present(actor, list(found.values()), session)
            if not c.masked}
    return {cid for cid, customer in found.items() if customer.id in full}


def registration_model(row: RegistrationRow, now: dt.datetime,
                       actor: Actor | None = None, *, full: bool | None = None
                       ) -> Registration:
    """The registration as ``actor`` reads it. ``full`` says whether its mobile and
    name show in full (:func:`shown_in_full`); left out, only partners and analysts
    see them masked (what the actor registered or recorded themselves)."""
    state, reason, ended = as_of(row, now)
    until = row.valid_until if state == "pending" else \
        row.protected_until if state == "confirmed" else None
    partner = actor is not None and actor.role == "partner"
    masked = (actor is not None and actor.role in NEVER_FULL) if full is None else not full
    return Registration(
        id=row.id, agency=row.agency, agent=row.agent_id, project=row.project,
        mobile=mask_mobile(row.mobile) if masked and row.mobile else row.mobile,
        name=mask_name(row.name) if masked and row.name else row.name,
        customer_id=None if partner else row.customer_id,
        state=state, reason=reason, rule_version=row.rule_version,
        registered_at=row.registered_at, valid_until=row.valid_until,
        confirmed_at=row.confirmed_at, protected_until=row.protected_until,
        converted_at=row.converted_at, ended_at=ended,
        time_left_seconds=int((until - now).total_seconds()) if until else None,
    )

