"""A stored registration read as of a time (what a sweep would write), as the
API returns it, and the refusal that carries one."""

from __future__ import annotations

import datetime as dt

from recrm_core import Actor, Refused, mask_mobile, mask_name
from recrm_core.access import NEVER_FULL

from ..models import Registration
from ..tables import RegistrationRow


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


def registration_model(row: RegistrationRow, now: dt.datetime,
                       actor: Actor | None = None) -> Registration:
    state, reason, ended = as_of(row, now)
    until = row.valid_until if state == "pending" else \
        row.protected_until if state == "confirmed" else None
    partner = actor is not None and actor.role == "partner"
    # an analyst reads registrations too, and never sees a mobile in full (the core's rule)
    masked = actor is not None and actor.role in NEVER_FULL
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

