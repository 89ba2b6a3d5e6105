"""The member's entries on the customer's timeline (``recrm_timeline``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from recrm_core import (
    Customer,
    TimelineEntry,
    UnitOfWork,
)

from .settings import NAME
from .tables import LedgerRow, MemberEventRow, ReferralRow, TierChangeRow

if TYPE_CHECKING:
    pass

def timeline_in(uow: UnitOfWork, customer: Customer) -> list[TimelineEntry] | None:
    session, cid = uow.session, customer.id
    entries: list[TimelineEntry] = []
    for ev in session.scalars(select(MemberEventRow).where(MemberEventRow.customer_id == cid)):
        title = {"enrol": "joined the club", "leave": "left the club",
                 "rejoin": "re-joined the club", "merge": "memberships merged"}.get(
                     ev.action, ev.action)
        entries.append(TimelineEntry(
            at=ev.at, kind=f"member_{ev.action}", title=f"{title} ({ev.number})", source=NAME,
            data={"number": ev.number, "note": ev.note, "actor": ev.actor_staff},
        ))
    for tc in session.scalars(select(TierChangeRow).where(TierChangeRow.customer_id == cid)):
        if tc.old_tier is None:
            continue  # the enrolment entry already says where the member started
        entries.append(TimelineEntry(
            at=tc.at, kind="member_tier", title=f"tier {tc.old_tier} → {tc.new_tier}",
            source=NAME,
            data={"old": tc.old_tier, "new": tc.new_tier, "reason": tc.reason,
                  "lifetime_points": tc.lifetime_points, "contracts": tc.contracts},
        ))
    for row in session.scalars(select(LedgerRow).where(LedgerRow.customer_id == cid)):
        entries.append(TimelineEntry(
            at=row.occurred_at, kind=f"points_{row.kind}",
            title=f"{row.points:+d} points ({row.kind})" + (f": {row.reason}" if row.reason
                                                            else ""),
            source=NAME,
            data={"entry": row.id, "points": row.points, "project": row.project,
                  "interaction": row.interaction_id},
        ))
    for ref in session.scalars(select(ReferralRow).where(ReferralRow.referrer_id == cid)):
        entries.append(TimelineEntry(
            at=ref.created_at, kind="referral",
            title=f"referred customer {ref.referred_id} for {ref.project}", source=NAME,
            data={"referral": ref.id, "referred": ref.referred_id, "project": ref.project,
                  "status": ref.status},
        ))
    return entries or None
