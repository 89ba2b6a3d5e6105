"""What points are worth now: first-in first-out, expiry, balance and redemption."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recrm_core import (
    Refused,
    UnitOfWork,
    utcnow,
)

from ..models import (
    Balance,
    ExpiredEntry,
    Redemption,
)
from ..tables import LedgerRow, MemberRow
from .ledger import insert_entry, keyed_entry, lifetime_of, member_in, points_of
from .rules import _chunks
from .views import entry_model


class Credit(Protocol):
    """What the first-in first-out rule reads of a ledger entry: the columns below,
    not the ORM object (loading ~2,000 ``LedgerRow`` objects was most of the demo's
    spendable points; bench/README.md, demo10)."""

    @property
    def id(self) -> int: ...
    @property
    def customer_id(self) -> int: ...
    @property
    def points(self) -> int: ...
    @property
    def expires_at(self) -> dt.datetime | None: ...
    @property
    def occurred_at(self) -> dt.datetime: ...


#: the columns of a :class:`Credit`
_CREDIT = select(LedgerRow.id, LedgerRow.customer_id, LedgerRow.points, LedgerRow.expires_at,
                 LedgerRow.occurred_at)


def fifo(session: Session, customer_id: int) -> list[tuple[Credit, int]]:
    """Each credit with what is left of it once every debit (redemptions, expiries,
    negative adjustments, reversals) has consumed the soonest-expiring credits first."""
    rows = session.execute(_CREDIT.where(LedgerRow.customer_id == customer_id)).all()
    return _fifo(rows)


def _ledgers(session: Session, customer_ids: Sequence[int]) -> dict[int, list[Credit]]:
    """By customer, the ledger entries of many members: one read per 500."""
    rows: dict[int, list[Credit]] = {cid: [] for cid in customer_ids}
    for chunk in _chunks(sorted(rows), 500):
        for row in session.execute(_CREDIT.where(LedgerRow.customer_id.in_(list(chunk)))):
            rows[row.customer_id].append(row)
    return rows


def _fifo(rows: Sequence[Credit]) -> list[tuple[Credit, int]]:
    """:func:`fifo` of one member's ledger entries, read."""
    debt = -sum(r.points for r in rows if r.points < 0)
    credits = sorted(
        (r for r in rows if r.points > 0),
        key=lambda r: (r.expires_at is None, r.expires_at or r.occurred_at, r.occurred_at, r.id),
    )
    left: list[tuple[Credit, int]] = []
    for credit in credits:
        used = min(credit.points, debt)
        debt -= used
        left.append((credit, credit.points - used))
    return left


def expire_member_in(session: Session, customer_id: int, now: dt.datetime, *,
                     write: bool = True) -> list[ExpiredEntry]:
    """Write off what is left of every credit past its expiry, oldest first (call with
    the member row locked). Idempotent: a second run finds nothing left to expire.
    ``write=False`` writes nothing and returns what a run would write off, so a
    preview is decided by the very rule the run applies."""
    return _expire(session, customer_id, fifo(session, customer_id), now, write)


def expire_members_in(session: Session, customer_ids: Sequence[int], now: dt.datetime, *,
                      write: bool = True) -> list[ExpiredEntry]:
    """:func:`expire_member_in` for many members (their rows locked), in the order
    given, with one read of their ledgers per 500: an expiry run read each member's
    ledger by a statement of its own."""
    ledgers = _ledgers(session, customer_ids)
    return [entry for cid in customer_ids
            for entry in _expire(session, cid, _fifo(ledgers[cid]), now, write)]


def _expire(session: Session, customer_id: int, left: Sequence[tuple[Credit, int]],
            now: dt.datetime, write: bool) -> list[ExpiredEntry]:
    """The expiry rule on a member's credits as :func:`fifo` leaves them."""
    expired: list[ExpiredEntry] = []
    for credit, remaining in left:
        if remaining <= 0 or credit.expires_at is None or credit.expires_at > now:
            continue
        if write:
            insert_entry(
                session, customer_id=customer_id, kind="expire", points=-remaining,
                source_entry_id=credit.id, occurred_at=credit.expires_at,
                reason=f"points of entry {credit.id} expired",
            )
        expired.append(ExpiredEntry(customer_id=customer_id, points=remaining,
                                    source_entry_id=credit.id))
    return expired


def spendable_in(session: Session, customer_ids: Sequence[int],
                 now: dt.datetime) -> dict[int, int]:
    """By member, what :func:`balance_in` leaves to spend (the balance less what is
    due to expire at ``now``), for many members with one read of their ledgers: the
    demo's redemptions asked ``balance_in`` (three statements) member by member."""
    return {cid: sum(r.points for r in ledger) - _due(_fifo(ledger), now)
            for cid, ledger in _ledgers(session, customer_ids).items()}


def _due(left: Sequence[tuple[Credit, int]], now: dt.datetime) -> int:
    """What is left of the credits past their expiry at ``now``."""
    return sum(remaining for credit, remaining in left
               if remaining > 0 and credit.expires_at is not None and credit.expires_at <= now)


def balance_in(session: Session, member: MemberRow, now: dt.datetime) -> Balance:
    assert member.number is not None
    sums: dict[str, int] = defaultdict(int)
    for kind, points in session.execute(
        select(LedgerRow.kind, func.sum(LedgerRow.points))
        .where(LedgerRow.customer_id == member.customer_id)
        .group_by(LedgerRow.kind)
    ):
        sums[kind] = int(points or 0)
    left = fifo(session, member.customer_id)
    due = _due(left, now)
    next_at: dt.datetime | None = None
    next_points = 0
    for credit, remaining in left:
        if remaining <= 0 or credit.expires_at is None or credit.expires_at <= now:
            continue
        if next_at is None or credit.expires_at == next_at:
            next_at = credit.expires_at
            next_points += remaining
    return Balance(
        customer_id=member.customer_id,
        number=member.number,
        balance=sum(sums.values()),
        lifetime_points=lifetime_of(session, member.customer_id),
        redeemed=-sums["redeem"],
        expired=-sums["expire"],
        due_to_expire=due,
        next_expiry_at=next_at,
        next_expiry_points=next_points,
    )


def redeem_in(uow: UnitOfWork, customer_id: int, points: int, *, reason: str | None,
              ref: str | None, at: dt.datetime) -> Redemption:
    """``Membership.redeem`` inside a unit of work (its actor redeems), with checked
    ``points``, ``reason`` and ``ref``."""
    session, actor, cid = uow.session, uow.actor, customer_id
    member = member_in(session, cid, active=True)
    if ref is not None:
        earlier = keyed_entry(session, "redeem", cid, ref)
        if earlier is not None:
            return Redemption(entry=entry_model(earlier), redeemed=False,
                              balance=points_of(session, cid))
    expired = expire_member_in(session, cid, at)
    balance = points_of(session, cid)
    if points > balance:
        raise Refused(f"member {member.number} has {balance} points; cannot redeem {points}")
    values = {
        "customer_id": cid, "kind": "redeem", "points": -points,
        "event_kind": "redeem" if ref else None,
        "event_subject": cid if ref else None, "event_ref": ref, "reason": reason,
        "actor_staff": actor.staff_id if actor else None,
        "actor_role": actor.role if actor else None, "occurred_at": at,
        "recorded_at": utcnow(),
    }
    new_id = insert_entry(session, **values)
    assert new_id is not None  # the key was checked under the member lock
    # The entry as a read gives it (datetimes in UTC), from what was written rather
    # than read back: the demo's redemptions read each one again.
    row = LedgerRow(id=new_id, **(values | {"occurred_at": at.astimezone(dt.UTC)}))
    # The balance after: the one read above less ours (this transaction wrote nothing
    # else to the ledger since), not read again: one statement fewer a redemption.
    return Redemption(entry=entry_model(row), redeemed=True, balance=balance - points,
                      expired_first=sum(e.points for e in expired))
