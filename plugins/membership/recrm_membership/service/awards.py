"""Awards inside a unit of work: one keyed ledger entry per event."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select

from recrm_core import (
    Interaction,
    NotFound,
    UnitOfWork,
    clean_code,
)

from ..settings import settings
from ..tables import LedgerRow, MemberRow
from .contracts import add_months
from .ledger import (
    _retier,
    insert_awards,
    insert_entry,
    keyed_entry,
    lock_members,
    recompute_tier_in,
)
from .rules import SPENDING, STAGE_KINDS, _chunks


def interaction_ref(interaction: Interaction) -> str:
    """The award key of an interaction: an integrator's ``data["event_key"]`` (an
    event id, an external contract number), else ``project/unit`` for 认购/签约/交房,
    else the interaction itself."""
    given = clean_code(interaction.data.get("event_key"))
    if given:
        return given[:128]
    if interaction.kind in STAGE_KINDS and interaction.project:
        unit = interaction.data.get("unit") or ""
        return f"{interaction.project}/{unit}"[:128]
    return f"interaction:{interaction.id}"


def award_in(uow: UnitOfWork, member: MemberRow, award: AwardIn) -> int | None:
    """Award points to a (locked) member for one event. Returns the new entry id,
    or ``None`` when the event was awarded before. ``credit_in`` when the caller needs
    the award row too; this one skips reading it back (interaction awards, bulk)."""
    new_id = _insert_award(uow, member.customer_id, award)
    if new_id is not None:
        recompute_tier_in(uow.session, settings(uow.crm), member, "points")
    return new_id


def _insert_award(uow: UnitOfWork, customer_id: int, award: AwardIn) -> int | None:
    """The keyed ledger entry of one award."""
    return insert_entry(uow.session, **_award_entry(uow, customer_id, award))


def _award_entry(uow: UnitOfWork, customer_id: int, award: AwardIn) -> dict[str, Any]:
    """The ledger entry's values of one award, expiring ``expiry_months`` after it."""
    conf = settings(uow.crm)
    expires = (
        add_months(award.occurred_at, conf.expiry_months, uow.crm.config.zone)
        if conf.expiry_months else None
    )
    return {
        "customer_id": customer_id, "kind": award.entry_kind, "points": award.points,
        "event_kind": award.event_kind, "event_subject": award.subject,
        "event_ref": award.ref, "project": award.project,
        "interaction_id": award.interaction_id, "reason": award.reason,
        "actor_staff": uow.actor.staff_id if uow.actor else None,
        "actor_role": uow.actor.role if uow.actor else None,
        "occurred_at": award.occurred_at, "expires_at": expires,
    }


def credit_in(uow: UnitOfWork, member: MemberRow,
              award: AwardIn) -> tuple[int | None, LedgerRow | None]:
    """``award_in``, returning the new entry id (``None`` when the event was awarded
    before) and the award row."""
    new_id = award_in(uow, member, award)
    return new_id, keyed_entry(uow.session, award.event_kind, award.subject, award.ref)


def award_interaction_in(uow: UnitOfWork, member: MemberRow, interaction: Interaction,
                         points: int) -> int | None:
    return award_in(uow, member, interaction_award(interaction, points))


@dataclass(frozen=True)
class AwardIn:
    """One award (:func:`award_in`, :func:`credit_in`, :func:`award_many_in`): the keyed
    event and the points it earns."""

    entry_kind: str
    event_kind: str
    subject: int
    ref: str
    points: int
    occurred_at: dt.datetime
    project: str | None = None
    interaction_id: int | None = None
    reason: str | None = None


def interaction_award(interaction: Interaction, points: int) -> AwardIn:
    """The award an interaction earns (to the customer it happened to)."""
    return AwardIn(
        entry_kind="earn", event_kind=interaction.kind,
        subject=interaction.customer_id, ref=interaction_ref(interaction), points=points,
        occurred_at=interaction.occurred_at, project=interaction.project,
        interaction_id=interaction.id,
        reason=interaction.summary[:200] if interaction.summary else interaction.kind,
    )


def award_many_in(uow: UnitOfWork, awards: Sequence[tuple[int, AwardIn]]) -> list[int | None]:
    """``award_in`` for many ``(member's customer id, award)``, in order, as one
    batch: the members locked by one statement (in id order, so two batches cannot
    deadlock), their lifetime points read by one, the keyed entries inserted by one
    per 500 (:func:`insert_awards`: a key repeated in the batch is awarded once, at
    its first), and the tiers recomputed from them after each new award, in order.
    Returns the new entry ids (``None``: awarded before)."""
    session, conf = uow.session, settings(uow.crm)
    ids = sorted({cid for cid, _ in awards})
    members = lock_members(session, ids)
    lifetime: dict[int, int] = dict.fromkeys(ids, 0)
    for chunk in _chunks(ids, 500):
        lifetime.update((int(cid), int(points)) for cid, points in session.execute(
            _LIFETIMES, {"ids": list(chunk)}))
    missing = sorted(set(ids) - set(members))
    if missing:
        raise NotFound(f"customer {missing[0]} is not a member")
    # The tiers are recomputed from the points alone (nothing is read back), so the
    # inserts may all go first: the tier changes are those award by award gave.
    results = insert_awards(session, [_award_entry(uow, cid, award) for cid, award in awards])
    for (cid, award), new_id in zip(awards, results, strict=True):
        if new_id is not None:
            if award.entry_kind not in SPENDING:
                lifetime[cid] += award.points
            _retier(session, conf, members[cid], lifetime[cid], "points", None)
    return results


_LIFETIMES = (
    select(LedgerRow.customer_id, func.sum(LedgerRow.points))
    .where(LedgerRow.customer_id.in_(bindparam("ids", expanding=True)),
           LedgerRow.kind.not_in(SPENDING), LedgerRow.duplicate_of.is_(None))
    .group_by(LedgerRow.customer_id)
)
