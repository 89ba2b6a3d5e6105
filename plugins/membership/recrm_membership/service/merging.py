"""A customer merge inside a unit of work: the duplicate's membership moves."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from recrm_core import (
    Customer,
    UnitOfWork,
    utcnow,
)

from ..settings import settings
from ..tables import LedgerRow, MemberEventRow, ReferralRow, TierChangeRow
from .contracts import contracts_of
from .ledger import _event, insert_entry, keyed_entry, lock_member, points_of, recompute_tier_in
from .views import event_key


def merge_in(uow: UnitOfWork, survivor: Customer, duplicate_id: int) -> None:
    """Move the duplicate's membership to the survivor; see ``recrm_customer_merged``."""
    session, conf, now = uow.session, settings(uow.crm), utcnow()
    sid, did = survivor.id, duplicate_id
    # Lock both in id order, so two merges touching the same members cannot deadlock.
    locked = {cid: lock_member(session, cid) for cid in sorted((sid, did))}
    kept, gone = locked[sid], locked[did]
    if gone is not None:
        if kept is None:
            gone.customer_id = sid  # the survivor takes over the duplicate's number
            session.flush()
            kept = gone
            _event(session, kept, "merge", f"customer {did} merged into {sid}", uow.actor, now)
        else:
            if gone.status == "active" and kept.status != "active":
                kept.status, kept.left_at = "active", None
            gone.status, gone.merged_into = "merged", sid
            _event(session, kept, "merge",
                    f"member {gone.number} (customer {did}) merged into {kept.number}",
                    uow.actor, now)
    session.execute(update(LedgerRow).where(LedgerRow.customer_id == did)
                    .values(customer_id=sid))
    for table in (TierChangeRow, MemberEventRow):
        session.execute(update(table).where(table.customer_id == did).values(customer_id=sid))
    reversed_for = _rekey_awards(uow, sid, did, now)
    _merge_referrals(session, sid, did)
    if kept is not None:
        kept.contracts = contracts_of(uow, survivor)
        session.flush()
        recompute_tier_in(session, conf, kept, "merge", now)
    for customer_id in sorted(reversed_for - {sid}):
        other = lock_member(session, customer_id)
        if other is not None:
            recompute_tier_in(session, conf, other, "merge", now)


def _rekey_awards(uow: UnitOfWork, sid: int, did: int, now: dt.datetime) -> set[int]:
    """Awards whose event happened to the duplicate now belong to the survivor's
    events. Where the survivor holds the same award key (the same contract recorded
    under both records), the survivor's award stays keyed and the duplicate's is
    unkeyed and reversed: exactly one award per key, no point counted twice."""
    session = uow.session
    twins: list[tuple[LedgerRow, LedgerRow]] = []
    for row in session.scalars(
        select(LedgerRow).where(LedgerRow.event_subject == did).order_by(LedgerRow.id)
    ).all():
        assert row.event_kind is not None and row.event_ref is not None
        kept = keyed_entry(session, row.event_kind, sid, row.event_ref)
        if kept is not None:
            twins.append((row, kept))
    for row, kept in twins:
        row.reason = f"duplicate of award {kept.id} ({event_key(kept)}), found by a merge"
        row.duplicate_of = kept.id
        row.event_kind = row.event_subject = row.event_ref = None
    session.flush()
    session.execute(update(LedgerRow).where(LedgerRow.event_subject == did)
                    .values(event_subject=sid))
    touched: set[int] = set()
    for row, _ in twins:
        lock_member(session, row.customer_id)
        # Never below zero: if the twin award was already spent, only what is left
        # is taken back (the ledger is the record of the shortfall).
        take = min(row.points, max(points_of(session, row.customer_id), 0))
        if take > 0:
            insert_entry(
                session, customer_id=row.customer_id, kind="reversal", points=-take,
                source_entry_id=row.id, occurred_at=now,
                reason=f"award {row.id} counted twice before the merge"
                + (f"; {row.points - take} already spent" if take < row.points else ""),
                actor_staff=uow.actor.staff_id if uow.actor else None,
            )
        touched.add(row.customer_id)
    return touched


def _merge_referrals(session: Session, sid: int, did: int) -> None:
    session.execute(update(ReferralRow).where(ReferralRow.referrer_id == did)
                    .values(referrer_id=sid))
    live = ReferralRow.status != "superseded"
    survivor_projects = set(session.scalars(
        select(ReferralRow.project).where(ReferralRow.referred_id == sid, live)
    ))
    for row in session.scalars(
        select(ReferralRow).where(ReferralRow.referred_id == did, live)
    ).all():
        if row.project in survivor_projects:
            # The survivor's referral for this project stands; this one is history.
            row.status = "superseded"
            row.note = f"superseded: customer {did} merged into {sid}"
    session.flush()
    session.execute(update(ReferralRow).where(ReferralRow.referred_id == did)
                    .values(referred_id=sid))
    for row in session.scalars(
        select(ReferralRow).where(ReferralRow.referrer_id == sid,
                                  ReferralRow.referred_id == sid, live)
    ).all():
        row.status = "superseded"
        row.note = "superseded: referrer and referred customer were merged"
    session.flush()
