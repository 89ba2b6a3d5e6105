"""The points ledger inside a unit of work: member locks, keyed entries, tiers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, func, select
from sqlalchemy.orm import Session

from recrm_core import (
    Actor,
    NotFound,
    Refused,
    insert_or_ignore,
    insert_or_ignore_many,
    utcnow,
)
from recrm_core.rawsql import RawSelect

from ..settings import MembershipSettings
from ..tables import LedgerRow, MemberEventRow, MemberRow, TierChangeRow
from .rules import SPENDING, _chunks


def lock_member(session: Session, customer_id: int) -> MemberRow | None:
    """The member row of ``customer_id``, locked until the transaction ends.

    ``populate_existing``: a row already in the session is re-read, so a balance
    decision is made on what the lock protects, not on a stale copy.
    """
    return session.scalars(_LOCK_MEMBER, {"cid": customer_id}).one_or_none()


# Prebuilt: every stage change and interaction runs it, and building it cost more
# than running it.
_LOCK_MEMBER = (
    select(MemberRow)
    .where(MemberRow.customer_id == bindparam("cid"))
    .with_for_update()
    .execution_options(populate_existing=True)
)


def lock_members(session: Session, customer_ids: Iterable[int]) -> dict[int, MemberRow]:
    """The member rows (any status) of those of ``customer_ids`` who have one, locked
    until the transaction ends, by one statement per 500 in customer order (two
    batches locking the same members cannot deadlock): the batch hooks' one
    question about a batch's customers."""
    ids = sorted(set(customer_ids))
    if len(ids) == 1:
        # A batch of one (every single operation): the member lock's own statement,
        # as an expanding IN costs ~30 us more a call (1,300 stage changes measured).
        member = lock_member(session, ids[0])
        return {} if member is None else {ids[0]: member}
    found: dict[int, MemberRow] = {}
    # Chunked: a batch may name more customers than a statement takes parameters.
    for chunk in _chunks(ids, 500):
        found.update((m.customer_id, m) for m in session.scalars(_LOCK_MEMBERS,
                                                                 {"ids": list(chunk)}))
    return found


# Prebuilt, like the member lock: every batch of stage changes and interactions runs it.
_LOCK_MEMBERS = (
    select(MemberRow)
    .where(MemberRow.customer_id.in_(bindparam("ids", expanding=True)))
    .order_by(MemberRow.customer_id)
    .with_for_update()
    .execution_options(populate_existing=True)
)


def lock_member_ids(conn: Connection, customer_ids: Iterable[int]) -> list[int]:
    """Those of ``customer_ids`` with a member row (any status), locked as
    :func:`lock_members` locks them (one statement per 500, in customer order), asked
    on the unit of work's connection: the batch hooks' first question, so that a
    batch of non-members (most stage changes and visits) makes no ORM ``Session``
    (with every plugin, the session was half of a single ``set_stage``'s cost). The
    rows of those found are then loaded with :func:`lock_members`."""
    ids = sorted(set(customer_ids))
    if len(ids) == 1:
        # A batch of one (every single operation): on the driver's cursor (the core's
        # RawSelect), as SQLAlchemy's execution path costs more than the lookup (the
        # stage hook of a non-member's set_stage: 41-43 us -> 14-15; bench/README.md).
        return ids if _LOCK_MEMBER_ID.all(conn, {"cid": ids[0]}) else []
    found: list[int] = []
    for chunk in _chunks(ids, 500):
        found.extend(conn.scalars(_LOCK_MEMBER_IDS, {"ids": list(chunk)}))
    return found


# Prebuilt, like the member locks above (the same rows, the same order).
_LOCK_MEMBER_ID = RawSelect(
    select(MemberRow.customer_id).where(MemberRow.customer_id == bindparam("cid"))
    .with_for_update()
)
_LOCK_MEMBER_IDS = (
    select(MemberRow.customer_id)
    .where(MemberRow.customer_id.in_(bindparam("ids", expanding=True)))
    .order_by(MemberRow.customer_id)
    .with_for_update()
)


def points_of(session: Session, customer_id: int) -> int:
    return int(session.scalar(_POINTS, {"cid": customer_id}) or 0)


def lifetime_of(session: Session, customer_id: int) -> int:
    return int(session.scalar(_LIFETIME, {"cid": customer_id}) or 0)


# Prebuilt, like the member lock: every credit recomputes the tier from the lifetime
# sum, and building these per call cost more than running them.
_POINTS = select(func.coalesce(func.sum(LedgerRow.points), 0)).where(
    LedgerRow.customer_id == bindparam("cid")
)


_LIFETIME = select(func.coalesce(func.sum(LedgerRow.points), 0)).where(
    LedgerRow.customer_id == bindparam("cid"), LedgerRow.kind.not_in(SPENDING),
    LedgerRow.duplicate_of.is_(None),
)


def insert_entry(session: Session, **values: Any) -> int | None:
    """Append one ledger entry; returns its id, or ``None`` when its award key
    (``event_kind``, ``event_subject``, ``event_ref``) was awarded before.

    ``INSERT ... ON CONFLICT DO NOTHING``: a concurrent writer of the same key waits
    for ours to commit and then inserts nothing, so no retry can award twice.
    """
    values.setdefault("recorded_at", utcnow())
    # An entry without an award key has NULLs there, which never conflict.
    new_id = insert_or_ignore(session, LedgerRow, values, on=AWARD_KEY,
                              returning=LedgerRow.id)
    return None if new_id is None else int(new_id)


def insert_awards(session: Session, entries: Sequence[dict[str, Any]]) -> list[int | None]:
    """:func:`insert_entry` for many entries that each carry an award key, in order,
    by one statement per 500: the new ids (``None``: that key was awarded before, or
    earlier in ``entries``). A bulk award (the demo's owners' days: a few hundred
    members each) wrote its entries one statement at a time."""
    if any(e.get(name) is None for e in entries for name in AWARD_KEY):
        # Row-by-row, keys without NULLs would be told apart; the batch's check for
        # keys repeated within it would take NULL keys for one.
        raise ValueError("insert_awards takes entries with an award key only")
    now = utcnow()
    found: list[int | None] = []
    for start in range(0, len(entries), 500):
        chunk = [{"recorded_at": now, **e} for e in entries[start:start + 500]]
        found += [None if n is None else int(n) for n in insert_or_ignore_many(
            session, LedgerRow, chunk, on=AWARD_KEY, returning=LedgerRow.id)]
    return found


#: the columns of an award's key: one entry per awarded event
AWARD_KEY = ("event_kind", "event_subject", "event_ref")


def keyed_entry(session: Session, kind: str, subject: int, ref: str) -> LedgerRow | None:
    return session.scalars(
        _KEYED_ENTRY, {"kind": kind, "subject": subject, "ref": ref}
    ).one_or_none()


_KEYED_ENTRY = select(LedgerRow).where(
    LedgerRow.event_kind == bindparam("kind"),
    LedgerRow.event_subject == bindparam("subject"),
    LedgerRow.event_ref == bindparam("ref"),
)


def recompute_tier_in(
    session: Session, conf: MembershipSettings, member: MemberRow, reason: str,
    at: dt.datetime | None = None,
) -> bool:
    """Give the member the tier its lifetime points and contracts reach; record a
    change. Returns whether the tier changed."""
    if not _retier(session, conf, member, lifetime_of(session, member.customer_id), reason,
                   at):
        return False
    session.flush()
    return True


def _retier(session: Session, conf: MembershipSettings, member: MemberRow, lifetime: int,
            reason: str, at: dt.datetime | None) -> bool:
    """``recompute_tier_in`` with the lifetime points known (nothing flushed)."""
    tier = conf.tier_for(lifetime, member.contracts)
    if tier == member.tier:
        return False
    session.add(TierChangeRow(
        customer_id=member.customer_id, old_tier=member.tier, new_tier=tier, reason=reason,
        lifetime_points=lifetime, contracts=member.contracts, at=at or utcnow(),
    ))
    member.tier = tier
    return True


def _event(session: Session, member: MemberRow, action: str, note: str | None,
           actor: Actor | None, at: dt.datetime) -> None:
    assert member.number is not None
    session.add(MemberEventRow(
        customer_id=member.customer_id, number=member.number, action=action,
        note=note[:200] if note else None,
        actor_staff=actor.staff_id if actor else None, at=at,
    ))


def member_in(session: Session, customer_id: int, *, active: bool = False) -> MemberRow:
    """The member row of ``customer_id``, locked: NotFound for a non-member, Refused
    with ``active`` for one who left."""
    member = lock_member(session, customer_id)
    if member is None:
        raise NotFound(f"customer {customer_id} is not a member")
    if active and member.status != "active":
        raise Refused(f"member {member.number} (customer {customer_id}) has left the club")
    return member
