"""Rows to the public models."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import (
    LedgerEntry,
    Member,
    MemberEvent,
    Referral,
    TierChange,
)
from ..tables import LedgerRow, MemberEventRow, MemberRow, ReferralRow, TierChangeRow
from .ledger import lifetime_of, points_of


def event_key(row: LedgerRow) -> str | None:
    if row.event_kind is None:
        return None
    return f"{row.event_kind}:{row.event_subject}:{row.event_ref}"


def entry_model(row: LedgerRow) -> LedgerEntry:
    return LedgerEntry(
        id=row.id,
        customer_id=row.customer_id,
        kind=row.kind,
        points=row.points,
        event_key=event_key(row),
        project=row.project,
        interaction_id=row.interaction_id,
        source_entry_id=row.source_entry_id,
        duplicate_of=row.duplicate_of,
        reason=row.reason,
        actor_staff=row.actor_staff,
        occurred_at=row.occurred_at,
        expires_at=row.expires_at,
        recorded_at=row.recorded_at,
    )


def member_model(session: Session, row: MemberRow) -> Member:
    assert row.number is not None  # set in the enrolling transaction
    return Member(
        customer_id=row.customer_id,
        number=row.number,
        status=row.status,
        tier=row.tier,
        contracts=row.contracts,
        enrolled_at=row.enrolled_at,
        left_at=row.left_at,
        balance=points_of(session, row.customer_id),
        lifetime_points=lifetime_of(session, row.customer_id),
    )


def referral_model(session: Session, row: ReferralRow) -> Referral:
    reward = 0
    if row.reward_entry_id is not None:
        reward = session.scalar(
            select(LedgerRow.points).where(LedgerRow.id == row.reward_entry_id)
        ) or 0
    return Referral(
        id=row.id,
        referrer_id=row.referrer_id,
        referred_id=row.referred_id,
        project=row.project,
        status=row.status,
        created_at=row.created_at,
        converted_at=row.converted_at,
        reward_points=reward,
        note=row.note,
    )


def _tier_change(row: TierChangeRow) -> TierChange:
    return TierChange(customer_id=row.customer_id, old_tier=row.old_tier, new_tier=row.new_tier,
                      reason=row.reason, lifetime_points=row.lifetime_points,
                      contracts=row.contracts, at=row.at)


def _member_event(row: MemberEventRow) -> MemberEvent:
    return MemberEvent(customer_id=row.customer_id, number=row.number, action=row.action,
                       note=row.note, actor_staff=row.actor_staff, at=row.at)
