"""Timeline entries (``recrm_timeline``): each registration of the customer — by the
customer's id or one of their mobiles — and each of its recorded states, with the
reason. The core hides titles and details from partners and analysts."""

from __future__ import annotations

from sqlalchemy import or_, select

from recrm_core import Customer, TimelineEntry, UnitOfWork

from .settings import NAME
from .tables import RegistrationRow, TransitionRow

TITLES = {
    "pending": "registered",
    "rejected": "registration refused",
    "confirmed": "registration confirmed by a visit (判客)",
    "converted": "registration converted",
    "expired": "registration expired",
    "released": "registration released",
}


def timeline_in(uow: UnitOfWork, customer: Customer) -> list[TimelineEntry]:
    session = uow.session
    match = RegistrationRow.customer_id == customer.id
    if customer.mobiles:
        match = or_(match, RegistrationRow.mobile.in_(customer.mobiles))
    regs = {r.id: r for r in session.scalars(select(RegistrationRow).where(match))}
    if not regs:
        return []
    entries: list[TimelineEntry] = []
    for t in session.scalars(select(TransitionRow).where(
            TransitionRow.registration_id.in_(sorted(regs))).order_by(TransitionRow.id)):
        reg = regs[t.registration_id]
        entries.append(TimelineEntry(
            at=t.at, kind=f"channel_{t.state}", source=NAME,
            title=f"{TITLES.get(t.state, t.state)}: {reg.agency} at {reg.project} "
                  f"(registration {reg.id})",
            data={"registration": reg.id, "agency": reg.agency, "agent": reg.agent_id,
                  "project": reg.project, "state": t.state, "rule_version": t.rule_version,
                  "reason": t.reason},
        ))
    return entries
