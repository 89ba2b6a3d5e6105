"""Privacy requests (PIPL Art. 45, 47): a member's data export and erasure.

``export_in`` is everything the club holds about one person; ``erase_in`` removes it
from every ``membership_*`` table, inside the erasure's unit of work (the core then
scans every text column for the person's values and rolls back on a hit).

What the erasure does, table by table:

- ``membership_members``: the person's membership row (and those of records merged
  into them) deleted: the member number identifies them, and they are no longer a
  member (the current counts by tier drop by one, as for anyone who is gone);
- ``membership_tier_changes`` and ``membership_events``: their history deleted (the
  events' notes are free text about them);
- ``membership_ledger``: their entries kept for the club's point totals (issued,
  redeemed, expired, outstanding add up as before), under the erased customer record
  (which the core keeps without a personal value), with the free-text reason, the
  award key (a contract's names the unit: a home address) and the interaction link
  removed; another member's referral reward for referring them keeps its points and
  key, its reason no longer naming them;
- ``membership_referrals``: a referral links two people. A row between the person
  and another member is kept for the other's referral figures (and their reward),
  pointing at the erased record, its note removed; a row with the person on both
  sides (left by a merge) is deleted.

Free text anywhere else in these tables that names the person's mobile, ID number or
email (a reason a consultant typed on another member's entry) is replaced by
``(redacted)``, so the scan finds nothing and the other member keeps the entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, or_, select, update

from recrm_core import Customer, ErasureStep, UnitOfWork, utcnow

from .service import balance_in, entry_model, lifetime_of, points_of
from .service.views import _member_event, _tier_change
from .tables import LedgerRow, MemberEventRow, MemberRow, ReferralRow, TierChangeRow

#: what replaces free text that named an erased person in another member's row
REDACTED = "(redacted)"


# -- export ------------------------------------------------------------------------------------


def export_in(uow: UnitOfWork, customer: Customer) -> dict[str, Any] | None:
    """Everything the club holds about ``customer`` as JSON-able dicts (ISO dates), or
    None for someone the club never knew. Referrals are listed without the other
    person's id: that is their data, not this person's."""
    session, cid = uow.session, customer.id
    member = session.scalars(select(MemberRow).where(MemberRow.customer_id == cid)).one_or_none()
    merged = session.scalars(select(MemberRow).where(MemberRow.merged_into == cid)
                             .order_by(MemberRow.id)).all()
    ledger = session.scalars(select(LedgerRow).where(LedgerRow.customer_id == cid)
                             .order_by(LedgerRow.recorded_at, LedgerRow.id)).all()
    changes = session.scalars(select(TierChangeRow).where(TierChangeRow.customer_id == cid)
                              .order_by(TierChangeRow.at, TierChangeRow.id)).all()
    events = session.scalars(select(MemberEventRow).where(MemberEventRow.customer_id == cid)
                             .order_by(MemberEventRow.at, MemberEventRow.id)).all()
    made = session.scalars(select(ReferralRow).where(ReferralRow.referrer_id == cid)
                           .order_by(ReferralRow.id)).all()
    received = session.scalars(select(ReferralRow).where(ReferralRow.referred_id == cid)
                               .order_by(ReferralRow.id)).all()
    if not (member or merged or ledger or changes or events or made or received):
        return None
    rewards = {
        row.id: row.points for row in session.scalars(select(LedgerRow).where(
            LedgerRow.id.in_([r.reward_entry_id for r in made if r.reward_entry_id])))
    }
    return {
        "member": None if member is None else {
            "number": member.number,
            "status": member.status,
            "tier": member.tier,
            "contracts": member.contracts,
            "enrolled_at": _iso(member.enrolled_at),
            "left_at": _iso(member.left_at),
            "balance": points_of(session, cid),
            "lifetime_points": lifetime_of(session, cid),
        },
        "balance": None if member is None or member.number is None
        else balance_in(session, member, utcnow()).model_dump(mode="json"),
        "merged_memberships": [
            {"number": m.number, "status": m.status, "tier": m.tier,
             "enrolled_at": _iso(m.enrolled_at), "left_at": _iso(m.left_at)}
            for m in merged
        ],
        "ledger": [entry_model(r).model_dump(mode="json") for r in ledger],
        "tier_changes": [_tier_change(r).model_dump(mode="json") for r in changes],
        "events": [_member_event(r).model_dump(mode="json") for r in events],
        "referrals_made": [
            {"id": r.id, "project": r.project, "status": r.status,
             "created_at": _iso(r.created_at), "converted_at": _iso(r.converted_at),
             "reward_points": rewards.get(r.reward_entry_id or 0, 0), "note": r.note}
            for r in made
        ],
        "referred_by": [
            {"id": r.id, "project": r.project, "status": r.status,
             "created_at": _iso(r.created_at), "converted_at": _iso(r.converted_at)}
            for r in received
        ],
    }


def _iso(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())


# -- erasure -----------------------------------------------------------------------------------


def erase_in(uow: UnitOfWork, customer: Customer, merged_ids: Iterable[int]) -> list[ErasureStep]:
    """Delete or anonymise every row about ``customer`` (and the records merged into
    them) in the club's tables; one step per table, every table listed (zero counts
    say it was looked at). Never branches on a dry run: the core rolls that back."""
    session = uow.session
    ids = sorted({customer.id, *merged_ids})
    theirs_ledger = LedgerRow.customer_id.in_(ids)

    # Members: the number identifies the person; their rows (and merged-away ones) go.
    members = _deleted(uow, delete(MemberRow).where(
        or_(MemberRow.customer_id.in_(ids), MemberRow.merged_into.in_(ids))))
    changes = _deleted(uow, delete(TierChangeRow).where(TierChangeRow.customer_id.in_(ids)))
    events = _deleted(uow, delete(MemberEventRow).where(MemberEventRow.customer_id.in_(ids)))

    # Ledger: amounts, kinds and dates stay (the club's totals); what says who, why or
    # which flat goes. NULL award keys never collide under the UNIQUE constraint.
    own = len(session.scalars(select(LedgerRow.id).where(theirs_ledger)).all())
    session.execute(
        update(LedgerRow).where(theirs_ledger)
        .values(reason=None, event_kind=None, event_subject=None, event_ref=None,
                interaction_id=None)
        .execution_options(synchronize_session=False))
    # Another member's reward for referring them: the points and key stay (the key
    # keeps the reward unique), the reason no longer names them.
    about = session.scalars(select(LedgerRow).where(
        ~theirs_ledger, LedgerRow.event_kind == "referral",
        LedgerRow.event_subject.in_(ids))).all()
    for row in about:
        row.reason = f"referred customer signed at {row.event_ref}"[:200]

    # Referrals: both sides theirs (a merge's leftovers) -> deleted; one side -> kept for
    # the other member's figures, pointing at the erased record, note removed.
    both = ReferralRow.referrer_id.in_(ids) & ReferralRow.referred_id.in_(ids)
    referrals_deleted = _deleted(uow, delete(ReferralRow).where(both))
    one_side = or_(ReferralRow.referrer_id.in_(ids), ReferralRow.referred_id.in_(ids))
    referrals_kept = len(session.scalars(select(ReferralRow.id).where(one_side)).all())
    session.execute(update(ReferralRow).where(one_side).values(note=None)
                    .execution_options(synchronize_session=False))
    session.flush()

    # Free text in other members' rows that names their mobile, ID number or email.
    # The core's rule for "names the person" (any spelling, not inside a longer number);
    # names are left to the core's scan of the person's own rows.
    from recrm_core.privacy import PersonValues, redact_in  # the erasure's module

    needles = PersonValues.of(customer, names=False)
    redacted_ledger = len(redact_in(uow.session, LedgerRow.reason, needles, ~theirs_ledger))
    redacted_events = len(redact_in(uow.session, MemberEventRow.note, needles))
    redacted_referrals = len(redact_in(uow.session, ReferralRow.note, needles))
    session.flush()

    return [
        ErasureStep(table=MemberRow.__tablename__, deleted=members),
        ErasureStep(table=TierChangeRow.__tablename__, deleted=changes),
        ErasureStep(table=MemberEventRow.__tablename__, deleted=events,
                    anonymised=redacted_events),
        ErasureStep(
            table=LedgerRow.__tablename__,
            anonymised=own + len(about) + redacted_ledger,
            basis="points, kinds, projects and dates kept under the erased customer record "
                  "(no personal value left in it) so the club's point totals still add up; "
                  "reasons, award keys and interaction links removed; other members' "
                  "entries keep their points, without naming the person"
            if own or about or redacted_ledger else None),
        ErasureStep(
            table=ReferralRow.__tablename__, deleted=referrals_deleted,
            anonymised=referrals_kept + redacted_referrals,
            basis="a referral is also the other member's: kept for their referral figures "
                  "and reward, pointing at the erased customer record, note removed"
            if referrals_kept or redacted_referrals else None),
    ]


def _deleted(uow: UnitOfWork, statement: Any) -> int:
    result = uow.session.execute(statement.execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


__all__ = ["REDACTED", "erase_in", "export_in"]
