"""The membership club: enrolment, tiers, the points ledger, expiry and referrals.

Two layers:

- functions ending in ``_in`` work inside a ``UnitOfWork`` (a service call of ours,
  or a core operation whose hook we are in) and never open a transaction;
- :class:`Membership` is the public service: each method is one operation (one
  transaction), takes customer ids and returns pydantic models.

Concurrency. Every write to a member's ledger first locks the member row
(``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite every recrm transaction starts
with ``BEGIN IMMEDIATE``, which already serialises writers), so a balance read and
the redemption it allows cannot interleave with another one: the balance never goes
negative. Awards are keyed by their event under a UNIQUE constraint and inserted
with ``ON CONFLICT DO NOTHING``, so the database, not a Python check, guarantees one
award per event.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from recrm_core import (
    CRM,
    Actor,
    Customer,
    Interaction,
    InvalidInput,
    NotFound,
    Refused,
    UnitOfWork,
    check_storable,
    clean_code,
    insert_or_ignore,
    insert_or_ignore_many,
    project_code,
    utcnow,
)
from recrm_core.access import require_role
from recrm_core.tables import InteractionRow, ProjectRow

from .models import (
    Award,
    Balance,
    ExpiredEntry,
    ExpiryResult,
    LedgerEntry,
    Member,
    MemberEvent,
    MemberReferralStats,
    MemberView,
    PointsTotals,
    ProjectReferralStats,
    Redemption,
    Referral,
    ReferralStats,
    Report,
    TierChange,
    TierInfo,
)
from .settings import MAX_POINTS, MembershipSettings, settings
from .tables import LedgerRow, MemberEventRow, MemberRow, ReferralRow, TierChangeRow

#: stages at which a customer has signed a contract for a project
SIGNED = ("buyer", "owner")
#: interactions the core records for stage changes: keyed by project and unit, so the
#: same contract recorded twice (a re-sync, a duplicate customer) awards once
STAGE_KINDS = ("subscription", "contract", "handover")
#: ledger kinds that do not count towards lifetime points (tiers)
SPENDING = ("redeem", "expire", "reversal")
#: award kinds the club keys itself (referral rewards, redemptions by order number)
RESERVED_KINDS = ("referral", "redeem")
#: where the interaction hook leaves the interactions of one operation by customer
#: (``uow.state``), for the stage hook that enrols an owner and awards the handover
SEEN_INTERACTIONS = "membership.interactions"

# Who sees what (``crm.access``). A member's points, ledger and history are details
# of one customer: a partner (an agency) sees a customer's masked name and mobile
# only, so none of them. Ledger reasons and event notes are free text (an
# interaction's summary becomes the reason of its award), and an award key names
# its event (a contract's is ``contract:ID:PROJECT/UNIT``: with the customer, a home
# address; a staff's ref is free text): all hidden from analysts.
#: roles that may read a member's details and the club's reports
READERS: tuple[str, ...] = ("admin", "manager", "sales", "service", "analyst")
#: roles that may change the club: enrol, award, redeem, adjust, refer, expire
STAFF: tuple[str, ...] = ("admin", "manager", "sales", "service")
#: the audit action of an expiry run that wrote points off (registered by the plugin)
EXPIRE_ACTION = "membership.expire"


# -- small helpers -------------------------------------------------------------------------


def add_months(at: dt.datetime, months: int, zone: ZoneInfo) -> dt.datetime:
    """``at`` plus calendar months in the business time zone (31 Jan + 1 = 28/29 Feb)."""
    local = at.astimezone(zone)
    index = local.month - 1 + months
    year, month = local.year + index // 12, index % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day).astimezone(dt.UTC)


def contracts_of(uow: UnitOfWork, customer: Customer, upto: int | None = None) -> int:
    """Contracts the customer holds: one per unit at each project where the customer
    is buyer or owner (an investor's second flat at the same project counts again; a
    signed project whose contract named no unit counts once; a project moved back
    before signing counts none).

    ``upto``: count only interactions up to this id, those logged by the stage change
    being answered. A batch of stage changes is answered after all of them, when
    the customer's later contracts are already there."""
    units = contract_units(uow.session, [customer.id]).get(customer.id, [])
    return count_contracts(customer, units, upto)


#: one contract or handover of a customer: (interaction id, project code, unit or "")
ContractUnit = tuple[int, str, str]


def count_contracts(customer: Customer, units: Iterable[ContractUnit],
                    upto: int | None = None) -> int:
    """:func:`contracts_of` with the customer's contracts and handovers read (by
    :func:`contract_units`)."""
    by_project: dict[str, set[str]] = {}
    for interaction_id, project, unit in units:
        if upto is None or interaction_id <= upto:
            by_project.setdefault(project, set()).add(unit)
    return sum(max(1, len(by_project.get(link.project, set()) - {""}))
               for link in customer.projects if link.stage in SIGNED)


def contract_units(session: Session,
                   customer_ids: Iterable[int]) -> dict[int, list[ContractUnit]]:
    """The contracts and handovers (with a project) of ``customer_ids``, by customer:
    one statement per 500 customers.

    Read from the core's table rather than through ``interactions.list_in`` (one
    customer a call, every column, a model each): a batch of stage changes counts
    the contracts of all of its members at once (list_in per change was 13% of the
    demo's stage seeding)."""
    found: dict[int, list[ContractUnit]] = defaultdict(list)
    for chunk in _chunks(sorted(set(customer_ids)), 500):
        for cid, interaction_id, code, data in session.execute(_CONTRACT_UNITS,
                                                               {"ids": list(chunk)}):
            unit = data.get("unit") if isinstance(data, dict) else None
            found[int(cid)].append((int(interaction_id), str(code), str(unit or "")))
    return found


_CONTRACT_UNITS = (
    select(InteractionRow.customer_id, InteractionRow.id, ProjectRow.code,
           InteractionRow.data)
    .join(ProjectRow, ProjectRow.id == InteractionRow.project_id)
    .where(InteractionRow.customer_id.in_(bindparam("ids", expanding=True)),
           InteractionRow.kind.in_(("contract", "handover")))
)


def _storable(value: str | None, field: str) -> str | None:
    """``value`` unless a database cannot store it: NUL (PostgreSQL text refuses it) or
    a lone surrogate (what undecodable command-line bytes become) is InvalidInput."""
    if value is not None:
        try:
            check_storable(value)
        except ValueError:
            raise InvalidInput(field, f"{field} contains a NUL or an invalid character") \
                from None
    return value


def _clean(value: object, field: str, limit: int, *, required: bool = True,
           code: bool = False) -> str | None:
    """Free text with its runs of whitespace collapsed, or with ``code`` a key (an
    event kind or reference) without invisible characters, so that ``gift\u200b``
    cannot award ``gift`` a second time."""
    text = " ".join((clean_code(value) if code else "" if value is None else str(value)).split())
    _storable(text, field)
    if not text:
        if required:
            raise InvalidInput(field, f"{field} is empty")
        return None
    if len(text) > limit:
        raise InvalidInput(field, f"{field} is longer than {limit} characters")
    return text


def _optional_project(raw: object) -> str | None:
    """A project code as the core writes it (trimmed, NFKC), or None for blank."""
    if raw is None or not str(raw).strip():
        return None
    _storable(str(raw), "project")
    return project_code(raw)


def _positive(points: object, field: str = "points") -> int:
    if isinstance(points, bool) or not isinstance(points, int):
        raise InvalidInput(field, "points must be a whole number")
    if points <= 0:
        raise InvalidInput(field, "points must be positive")
    if points > MAX_POINTS:
        raise InvalidInput(field, f"points must be at most {MAX_POINTS}")
    return points


def event_key(row: LedgerRow) -> str | None:
    if row.event_kind is None:
        return None
    return f"{row.event_kind}:{row.event_subject}:{row.event_ref}"


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


# -- rows to models --------------------------------------------------------------------------


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


# -- inside a unit of work -------------------------------------------------------------------


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
    new_id = insert_or_ignore(session, LedgerRow, values,
                              on=["event_kind", "event_subject", "event_ref"],
                              returning=LedgerRow.id)
    return None if new_id is None else int(new_id)


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


def enrol_in(
    uow: UnitOfWork, customer: Customer, *, note: str | None = None,
    at: dt.datetime | None = None, upto: int | None = None,
) -> tuple[MemberRow, bool]:
    """Enrol ``customer`` (or re-join a member who left). Returns the row and whether
    anything changed: an active member is returned unchanged. ``upto``: as
    :func:`contracts_of`'s."""
    session, conf, now = uow.session, settings(uow.crm), at or utcnow()
    member = lock_member(session, customer.id)
    if member is not None:
        if member.status == "active":
            return member, False
        member.status, member.left_at = "active", None
        member.contracts = contracts_of(uow, customer, upto)
        _event(session, member, "rejoin", note, uow.actor, now)
        recompute_tier_in(session, conf, member, "rejoin", now)
        return member, True
    joined = insert_members(uow, [Joining(customer.id, contracts_of(uow, customer, upto), now)])
    member, new = joined[customer.id]
    if new:
        record_enrolment(uow, member, note, now)
    return member, new


@dataclass(frozen=True)
class Joining:
    """A customer without a membership row to enrol: contracts held, and when."""

    customer_id: int
    contracts: int
    at: dt.datetime


def insert_members(uow: UnitOfWork,
                   joining: Sequence[Joining]) -> dict[int, tuple[MemberRow, bool]]:
    """The membership rows of customers who have none, in order (their numbers come
    from their keys), their numbers set by one statement and the rows read back
    locked by one: by customer, the row and whether ours is new (not: a concurrent
    operation enrolled them first). The enrolment's tier change and event are the
    caller's to record (:func:`record_enrolment`), where the enrolment happens."""
    session, conf = uow.session, settings(uow.crm)
    # ON CONFLICT DO NOTHING: a concurrent enrolment of the same customer makes ours
    # wait for it to commit and then insert nothing, without the savepoint an
    # IntegrityError would need (the savepoint and its ORM flush were a third of an
    # owner's stage change, measured in the demo).
    new_ids = insert_or_ignore_many(session, MemberRow, [
        {"customer_id": one.customer_id, "status": "active",
         "tier": conf.tier_for(0, one.contracts), "contracts": one.contracts,
         "enrolled_at": one.at} for one in joining], on=[MemberRow.customer_id],
        returning=MemberRow.id)
    # The serial comes from the row's own key: unique without a counter to contend on.
    numbers = [{"member_id": new_id, "member_number": conf.member_number(new_id)}
               for new_id in new_ids if new_id is not None]
    if numbers:
        session.execute(_SET_NUMBER, numbers)
    rows = lock_members(session, [one.customer_id for one in joining])
    missing = [one.customer_id for one in joining if one.customer_id not in rows]
    if missing:
        raise LookupError(f"membership of customer {missing[0]} vanished")
    new = {number["member_id"] for number in numbers}
    return {cid: (row, row.id in new) for cid, row in rows.items()}


def record_enrolment(uow: UnitOfWork, member: MemberRow, note: str | None,
                     at: dt.datetime) -> None:
    """The tier change and event of a new member's enrolment (nothing flushed)."""
    uow.session.add(TierChangeRow(
        customer_id=member.customer_id, old_tier=None, new_tier=member.tier,
        reason="enrol", lifetime_points=0, contracts=member.contracts, at=at))
    _event(uow.session, member, "enrol", note, uow.actor, at)


# On the Core table: one statement for the numbers of many new members (an ORM
# UPDATE with many parameter sets is a bulk update by primary key instead).
_MEMBERS = cast(Table, MemberRow.__table__)
_SET_NUMBER = (
    update(_MEMBERS).where(_MEMBERS.c.id == bindparam("member_id"))
    .values(number=bindparam("member_number"))
)


def award_in(uow: UnitOfWork, member: MemberRow, award: AwardIn) -> int | None:
    """Award points to a (locked) member for one event. Returns the new entry id,
    or ``None`` when the event was awarded before. ``credit_in`` when the caller needs
    the award row too; this one skips reading it back (interaction awards, bulk)."""
    new_id = _insert_award(uow, member.customer_id, award)
    if new_id is not None:
        recompute_tier_in(uow.session, settings(uow.crm), member, "points")
    return new_id


def _insert_award(uow: UnitOfWork, customer_id: int, award: AwardIn) -> int | None:
    """The keyed ledger entry of one award, expiring ``expiry_months`` after it."""
    conf = settings(uow.crm)
    expires = (
        add_months(award.occurred_at, conf.expiry_months, uow.crm.config.zone)
        if conf.expiry_months else None
    )
    return insert_entry(
        uow.session,
        customer_id=customer_id, kind=award.entry_kind, points=award.points,
        event_kind=award.event_kind, event_subject=award.subject, event_ref=award.ref,
        project=award.project, interaction_id=award.interaction_id, reason=award.reason,
        actor_staff=uow.actor.staff_id if uow.actor else None,
        actor_role=uow.actor.role if uow.actor else None,
        occurred_at=award.occurred_at, expires_at=expires,
    )


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
    deadlock), their lifetime points read by one, and the tiers recomputed from
    them after each new award (each award is still one keyed insert). Returns the
    new entry ids (``None``: awarded before)."""
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
    results: list[int | None] = []
    for cid, award in awards:
        new_id = _insert_award(uow, cid, award)
        if new_id is not None:
            if award.entry_kind not in SPENDING:
                lifetime[cid] += award.points
            _retier(session, conf, members[cid], lifetime[cid], "points", None)
        results.append(new_id)
    return results


_LIFETIMES = (
    select(LedgerRow.customer_id, func.sum(LedgerRow.points))
    .where(LedgerRow.customer_id.in_(bindparam("ids", expanding=True)),
           LedgerRow.kind.not_in(SPENDING), LedgerRow.duplicate_of.is_(None))
    .group_by(LedgerRow.customer_id)
)


def fifo(session: Session, customer_id: int) -> list[tuple[LedgerRow, int]]:
    """Each credit with what is left of it once every debit (redemptions, expiries,
    negative adjustments, reversals) has consumed the soonest-expiring credits first."""
    rows = session.scalars(select(LedgerRow).where(LedgerRow.customer_id == customer_id)).all()
    return _fifo(rows)


def _fifo(rows: Sequence[LedgerRow]) -> list[tuple[LedgerRow, int]]:
    """:func:`fifo` of one member's ledger rows, read."""
    debt = -sum(r.points for r in rows if r.points < 0)
    credits = sorted(
        (r for r in rows if r.points > 0),
        key=lambda r: (r.expires_at is None, r.expires_at or r.occurred_at, r.occurred_at, r.id),
    )
    left: list[tuple[LedgerRow, int]] = []
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
    expired: list[ExpiredEntry] = []
    for credit, remaining in fifo(session, customer_id):
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
    rows: dict[int, list[LedgerRow]] = {cid: [] for cid in customer_ids}
    for chunk in _chunks(sorted(rows), 500):
        for row in session.scalars(select(LedgerRow)
                                   .where(LedgerRow.customer_id.in_(list(chunk)))):
            rows[row.customer_id].append(row)
    return {cid: sum(r.points for r in ledger) - _due(_fifo(ledger), now)
            for cid, ledger in rows.items()}


def _due(left: Sequence[tuple[LedgerRow, int]], now: dt.datetime) -> int:
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


#: how a referral's note starts when another plugin withheld its reward
WITHHELD = "reward withheld: "


def withheld_note(reasons: list[tuple[str, str]]) -> str:
    """The referral's note for the reasons plugins gave to withhold its reward
    (``reward withheld: <reason> (<plugin>); ...``), cut to the column's 200."""
    note = WITHHELD + "; ".join(f"{reason} ({plugin})" for plugin, reason in reasons)
    return note if len(note) <= 200 else note[:199] + "…"


# Prebuilt: every signing asks it, mostly of customers nobody referred.
_PENDING_REFERRAL = (
    select(ReferralRow)
    .where(ReferralRow.referred_id == bindparam("cid"),
           ReferralRow.project == bindparam("project"), ReferralRow.status == "pending")
    .with_for_update()
)


def pending_referrals(session: Session,
                      signings: Iterable[tuple[int, str]]) -> set[tuple[int, str]]:
    """Those of ``(customer id, project)`` with a pending referral: one query for a
    batch of signings, mostly of customers nobody referred."""
    wanted = set(signings)
    found: set[tuple[int, str]] = set()
    ids = sorted({cid for cid, _ in wanted})
    for chunk in _chunks(ids, 500):
        found.update((int(cid), str(project)) for cid, project in session.execute(
            _PENDING_AMONG, {"ids": list(chunk)}))
    return found & wanted


_PENDING_AMONG = select(ReferralRow.referred_id, ReferralRow.project).where(
    ReferralRow.referred_id.in_(bindparam("ids", expanding=True)),
    ReferralRow.status == "pending")


def convert_referral_in(uow: UnitOfWork, customer: Customer, project: str,
                        at: dt.datetime) -> None:
    """The referred customer signed at ``project``: reward the referrer, once,
    unless a plugin withholds it (``recrm_withhold_referral_reward``; the reasons go
    into the referral's note)."""
    session, conf = uow.session, settings(uow.crm)
    referral = session.scalars(
        _PENDING_REFERRAL, {"cid": customer.id, "project": project}
    ).one_or_none()
    if referral is None:
        return
    customer_id = customer.id
    referral.status, referral.converted_at = "converted", at
    referrer = lock_member(session, referral.referrer_id)
    if referrer is None or referrer.status != "active":
        referral.note = "referrer is not an active member: no reward"
    elif conf.referral_reward > 0 and (reasons := uow.crm.hooks.withhold_referral_reward(
            uow, customer, project, referral.referrer_id, referral.created_at, at)):
        referral.note = withheld_note(reasons)
    elif conf.referral_reward > 0:
        _, row = credit_in(uow, referrer, AwardIn(
            entry_kind="referral", event_kind="referral", subject=customer_id,
            ref=project, points=conf.referral_reward, occurred_at=at, project=project,
            reason=f"referred customer {customer_id} signed at {project}",
        ))
        referral.reward_entry_id = row.id if row is not None else None
    session.flush()


def member_in(session: Session, customer_id: int, *, active: bool = False) -> MemberRow:
    """The member row of ``customer_id``, locked: NotFound for a non-member, Refused
    with ``active`` for one who left."""
    member = lock_member(session, customer_id)
    if member is None:
        raise NotFound(f"customer {customer_id} is not a member")
    if active and member.status != "active":
        raise Refused(f"member {member.number} (customer {customer_id}) has left the club")
    return member


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
    new_id = insert_entry(
        session, customer_id=cid, kind="redeem", points=-points,
        event_kind="redeem" if ref else None,
        event_subject=cid if ref else None, event_ref=ref, reason=reason,
        actor_staff=actor.staff_id if actor else None,
        actor_role=actor.role if actor else None, occurred_at=at,
    )
    assert new_id is not None  # the key was checked under the member lock
    row = session.get_one(LedgerRow, new_id)
    return Redemption(entry=entry_model(row), redeemed=True,
                      balance=points_of(session, cid),
                      expired_first=sum(e.points for e in expired))


def refer_in(uow: UnitOfWork, referrer_id: int, referred_id: int, code: str) -> Referral:
    """``Membership.refer`` inside a unit of work (its actor refers), for a project
    ``code`` as the core holds it. Refused leaves nothing written."""
    session = uow.session
    # Read in the transaction that records the referral rather than in one
    # of its own before it (on SQLite this also serialises the check with
    # stage changes, which take the same write lock).
    referrer = uow.crm.customers.resolve_in(uow, referrer_id)
    referred = uow.crm.customers.get_in(uow, referred_id)
    if referrer == referred.id:
        raise Refused(f"customer {referrer} cannot refer themselves")
    stage = next((p.stage for p in referred.projects if p.project == code), None)
    if stage == "owner":
        raise Refused(f"customer {referred.id} already owns at {code}")
    if stage == "buyer":
        raise Refused(f"customer {referred.id} already signed a contract at {code}")
    member = member_in(session, referrer)
    if member.status != "active":
        raise Refused(f"member {member.number} (customer {referrer}) has left "
                      "the club and cannot refer")
    row = ReferralRow(referrer_id=referrer, referred_id=referred.id, project=code,
                      status="pending", created_at=utcnow(),
                      actor_staff=uow.actor.staff_id if uow.actor else None)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        earlier = session.scalars(
            select(ReferralRow).where(ReferralRow.referred_id == referred.id,
                                      ReferralRow.project == code,
                                      ReferralRow.status != "superseded")
        ).first()
        by = f" by customer {earlier.referrer_id}" if earlier is not None else ""
        raise Refused(
            f"customer {referred.id} was already referred for {code}{by}"
        ) from None
    return referral_model(session, row)


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


# -- the public service ----------------------------------------------------------------------


class Membership:
    """The membership club of one CRM: ``recrm_membership.service(crm)``.

    Every method is one operation (one transaction). Unknown customers and
    non-members raise ``NotFound``; a state that forbids the operation (not enough
    points, a member who left, a self-referral) raises ``Refused``; a bad value
    raises ``InvalidInput``.
    """

    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    @property
    def settings(self) -> MembershipSettings:
        return settings(self.crm)

    # Customers are read inside our unit of work (``get_in``/``resolve_in``), so a
    # check on the customer and the write it allows see the same transaction.
    def _customer(self, uow: UnitOfWork, customer_id: int) -> Customer:
        return self.crm.customers.get_in(uow, customer_id)

    def _customer_id(self, uow: UnitOfWork, customer_id: int) -> int:
        """The surviving customer's id (a merged-away id follows the merge)."""
        return self.crm.customers.resolve_in(uow, customer_id)

    _member = staticmethod(member_in)

    # enrolment ---------------------------------------------------------------------------
    def enroll(self, customer_id: int, *, actor: Actor | None = None,
               note: str | None = None) -> Member:
        """Enrol a customer (anyone may join), or re-join one who left: same number,
        history and points kept."""
        require_role(actor, STAFF, "change the club")
        _storable(note, "note")
        with self.crm.unit_of_work(actor) as uow:
            customer = self._customer(uow, customer_id)
            member, changed = enrol_in(uow, customer, note=note)
            if not changed:
                raise Refused(f"customer {customer.id} is already a member ({member.number})")
            return member_model(uow.session, member)

    def leave(self, customer_id: int, *, reason: str | None = None,
              actor: Actor | None = None) -> Member:
        """End a membership. Number, ledger and history stay; points can neither be
        earned nor redeemed until the member re-joins."""
        require_role(actor, STAFF, "change the club")
        _storable(reason, "reason")
        with self.crm.unit_of_work(actor) as uow:
            cid = self._customer_id(uow, customer_id)
            member = self._member(uow.session, cid, active=True)
            now = utcnow()
            member.status, member.left_at = "left", now
            _event(uow.session, member, "leave", reason, actor, now)
            uow.session.flush()
            return member_model(uow.session, member)

    def get(self, customer_id: int, *, actor: Actor | None = None) -> Member:
        """The membership of ``customer_id`` (NotFound for a non-member); refused to
        partners."""
        require_role(actor, READERS, "see membership details")
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            cid = self._customer_id(uow, customer_id)
            return member_model(uow.session, self._member(uow.session, cid))

    def show(self, customer_id: int, *, now: dt.datetime | None = None,
             actor: Actor | None = None) -> MemberView:
        """The membership with its balance, ledger, tier changes, events and referrals,
        as ``actor`` may read it: refused to partners; ledger reasons, award keys (a
        contract's names the unit), event and referral notes hidden from analysts."""
        require_role(actor, READERS, "see membership details")
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            session = uow.session
            cid = self._customer_id(uow, customer_id)
            member = self._member(session, cid)
            ledger = session.scalars(
                select(LedgerRow).where(LedgerRow.customer_id == cid)
                .order_by(LedgerRow.recorded_at, LedgerRow.id)
            ).all()
            changes = session.scalars(
                select(TierChangeRow).where(TierChangeRow.customer_id == cid)
                .order_by(TierChangeRow.at, TierChangeRow.id)
            ).all()
            events = session.scalars(
                select(MemberEventRow).where(MemberEventRow.customer_id == cid)
                .order_by(MemberEventRow.at, MemberEventRow.id)
            ).all()
            made = session.scalars(
                select(ReferralRow).where(ReferralRow.referrer_id == cid)
                .order_by(ReferralRow.id)
            ).all()
            by = session.scalars(
                select(ReferralRow).where(ReferralRow.referred_id == cid)
                .order_by(ReferralRow.id)
            ).all()
            return MemberView(
                member=member_model(session, member),
                balance=balance_in(session, member, now or utcnow()),
                ledger=self._entries_for(actor, [entry_model(r) for r in ledger]),
                tier_changes=[_tier_change(r) for r in changes],
                events=[self._event_for(actor, _member_event(r)) for r in events],
                referrals_made=[self._referral_for(actor, referral_model(session, r))
                                for r in made],
                referred_by=[self._referral_for(actor, referral_model(session, r))
                             for r in by],
            )

    def _entries_for(self, actor: Actor | None,
                     entries: list[LedgerEntry]) -> list[LedgerEntry]:
        """Ledger entries as ``actor`` may read them: a reason is free text, and an
        award key names its event (a contract's, the unit: an address)."""
        if actor is None:
            return entries
        hide = self.crm.access.free_text
        return [e.model_copy(update={"reason": hide(actor, e.reason),
                                     "event_key": hide(actor, e.event_key)})
                for e in entries]

    def _referral_for(self, actor: Actor | None, referral: Referral) -> Referral:
        """A referral as ``actor`` may read it: a note is free text."""
        if actor is None:
            return referral
        return referral.model_copy(
            update={"note": self.crm.access.free_text(actor, referral.note)})

    def _event_for(self, actor: Actor | None, event: MemberEvent) -> MemberEvent:
        """A history event as ``actor`` may read it: a note is free text."""
        if actor is None:
            return event
        return event.model_copy(update={"note": self.crm.access.free_text(actor, event.note)})

    # points --------------------------------------------------------------------------------
    def balance(self, customer_id: int, *, now: dt.datetime | None = None,
                actor: Actor | None = None) -> Balance:
        """The member's points, all derived from the ledger; refused to partners."""
        require_role(actor, READERS, "see membership details")
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            member = self._member(uow.session, self._customer_id(uow, customer_id))
            return balance_in(uow.session, member, now or utcnow())

    def ledger(self, customer_id: int, *, actor: Actor | None = None) -> list[LedgerEntry]:
        """The member's ledger, in the order it was written (as :meth:`show` shows it
        to ``actor``)."""
        return self.show(customer_id, actor=actor).ledger

    def earn(
        self,
        customer_id: int,
        kind: str,
        ref: str,
        *,
        points: int | None = None,
        reason: str | None = None,
        project: str | None = None,
        occurred_at: dt.datetime | None = None,
        actor: Actor | None = None,
    ) -> Award:
        """Award points for one event (``kind`` + ``ref``, e.g. ``event`` +
        ``2024-06 owners' day``): the default amount is ``[membership] earn[kind]``.
        The same event awards once, however often it is sent."""
        require_role(actor, STAFF, "change the club")
        kind_text = _clean(kind, "kind", 32, code=True)
        ref_text = _clean(ref, "ref", 128, code=True)
        assert kind_text is not None and ref_text is not None
        kind_text = kind_text.lower()
        if kind_text in RESERVED_KINDS:
            raise InvalidInput("kind", f"{kind_text!r} awards are made by the club itself")
        if points is None:
            points = self.settings.earn.get(kind_text)
            if not points:
                raise InvalidInput("points", f"no earn amount for {kind_text!r} in "
                                   "[membership] earn; give the points")
        points = _positive(points)
        if occurred_at is not None and occurred_at.tzinfo is None:
            raise InvalidInput("occurred_at", "occurred_at needs a time zone")
        # Points for a mistyped project would sit under a code no report can name.
        code = self._known_project(project)
        with self.crm.unit_of_work(actor) as uow:
            cid = self._customer_id(uow, customer_id)
            member = self._member(uow.session, cid, active=True)
            new_id, row = credit_in(uow, member, AwardIn(
                entry_kind="earn", event_kind=kind_text, subject=cid,
                ref=ref_text, points=points, occurred_at=occurred_at or utcnow(),
                project=code,
                reason=_clean(reason, "reason", 200, required=False) or kind_text,
            ))
            return Award(awarded=new_id is not None,
                         entry=entry_model(row) if row is not None else None,
                         balance=points_of(uow.session, cid))

    def redeem(
        self,
        customer_id: int,
        points: int,
        *,
        reason: str | None = None,
        ref: str | None = None,
        actor: Actor | None = None,
        now: dt.datetime | None = None,
    ) -> Redemption:
        """Spend points. Expired points are written off first; more than the balance
        is refused. With ``ref`` (an order number) a retried redemption deducts once."""
        require_role(actor, STAFF, "change the club")
        points = _positive(points)
        ref_text = _clean(ref, "ref", 128, required=False, code=True)
        reason_text = _clean(reason, "reason", 200, required=False)
        with self.crm.unit_of_work(actor) as uow:
            cid = self._customer_id(uow, customer_id)
            return redeem_in(uow, cid, points, reason=reason_text, ref=ref_text,
                             at=now or utcnow())

    def adjust(self, customer_id: int, points: int, *, reason: str, actor: Actor) -> LedgerEntry:
        """Correct a balance by hand (either sign), with a reason and the staff who did
        it. A deduction below zero is refused."""
        if isinstance(points, bool) or not isinstance(points, int) or points == 0:
            raise InvalidInput("points", "an adjustment is a non-zero whole number")
        if abs(points) > MAX_POINTS:
            raise InvalidInput("points", f"an adjustment is at most {MAX_POINTS} points")
        reason_text = _clean(reason, "reason", 200)
        if not isinstance(actor, Actor):
            raise InvalidInput("actor", "an adjustment needs the staff who makes it")
        require_role(actor, STAFF, "change the club")
        with self.crm.unit_of_work(actor) as uow:
            session, now = uow.session, utcnow()
            cid = self._customer_id(uow, customer_id)
            member = self._member(session, cid)
            if points < 0:
                expire_member_in(session, cid, now)
                balance = points_of(session, cid)
                if -points > balance:
                    raise Refused(f"member {member.number} has {balance} points; "
                                  f"cannot deduct {-points}")
            conf = self.settings
            expires = (add_months(now, conf.expiry_months, self.crm.config.zone)
                       if points > 0 and conf.expiry_months else None)
            new_id = insert_entry(
                session, customer_id=cid, kind="adjust", points=points,
                reason=reason_text, actor_staff=actor.staff_id, actor_role=actor.role,
                occurred_at=now, expires_at=expires,
            )
            recompute_tier_in(session, conf, member, "adjust", now)
            return entry_model(session.get_one(LedgerRow, new_id))

    def expire(self, now: dt.datetime | None = None, *,
               customer_id: int | None = None, dry_run: bool = False,
               actor: Actor | None = None) -> ExpiryResult:
        """Write off, as ``expire`` ledger entries, every earned point older than
        ``[membership] expiry_months`` at ``now`` (default: the current time), oldest
        first. Safe to run repeatedly and concurrently: each member is expired under
        its row lock, and what was written off is never written off again.

        ``dry_run=True`` writes and locks nothing and returns what the run would
        write off at ``now`` (the same code decides both).

        A run that wrote points off appends one ``membership.expire`` entry to the
        audit log (members and points counted; the customer when ``customer_id``
        narrowed it). A preview is refused to partners, a run to partners and
        analysts."""
        if dry_run:
            require_role(actor, READERS, "see membership details")
        else:
            require_role(actor, STAFF, "change the club")
        at = now or utcnow()
        if at.tzinfo is None:
            raise InvalidInput("now", "now needs a time zone")
        if customer_id is not None:
            with self.crm.unit_of_work(actor, readonly=True) as uow:
                candidates: Sequence[int] = [self._customer_id(uow, customer_id)]
        else:
            with self.crm.unit_of_work(actor, readonly=dry_run) as uow:
                candidates = uow.session.scalars(
                    select(LedgerRow.customer_id)
                    .where(LedgerRow.points > 0, LedgerRow.expires_at <= at)
                    .distinct().order_by(LedgerRow.customer_id)
                ).all()
        entries: list[ExpiredEntry] = []
        for chunk in _chunks(candidates, 200):
            with self.crm.unit_of_work(actor, readonly=dry_run) as uow:
                for cid in chunk:
                    member = (uow.session.scalar(select(MemberRow.id)
                                                 .where(MemberRow.customer_id == cid))
                              if dry_run else lock_member(uow.session, cid))
                    if member is not None:
                        entries.extend(expire_member_in(uow.session, cid, at,
                                                        write=not dry_run))
        result = ExpiryResult(now=at, members=len({e.customer_id for e in entries}),
                              points=sum(e.points for e in entries), entries=entries,
                              dry_run=dry_run)
        if entries and not dry_run:
            # One entry for the run, with counts only (no customer's points in the
            # details), after its chunks committed.
            self.crm.audit.append(
                EXPIRE_ACTION, actor=actor,
                customer_id=candidates[0] if customer_id is not None else None,
                details={"scope": "member" if customer_id is not None else "all",
                         "members": result.members, "points": result.points,
                         "entries": len(entries), "at": at.astimezone(dt.UTC).isoformat()},
            )
        return result

    # referrals -------------------------------------------------------------------------------
    def refer(self, referrer_id: int, referred_id: int, project: str, *,
              actor: Actor | None = None) -> Referral:
        """A member refers a customer for a project (老带新). The referrer is rewarded
        once, when the referred customer first signs a contract there."""
        require_role(actor, STAFF, "change the club")
        given = _clean(project, "project", 64)
        assert given is not None
        # Projects are never deleted, so this read needs no place in our transaction.
        code = self.crm.projects.get(given).code
        with self.crm.unit_of_work(actor) as uow:
            return refer_in(uow, referrer_id, referred_id, code)

    def referrals(self, *, project: str | None = None,
                  actor: Actor | None = None) -> list[Referral]:
        """Every referral, or those for ``project`` (UnknownProject if there is none);
        refused to partners (who referred whom is a detail of both customers)."""
        require_role(actor, READERS, "see membership details")
        code = self._known_project(project)
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            query = select(ReferralRow).order_by(ReferralRow.id)
            if code is not None:
                query = query.where(ReferralRow.project == code)
            return [self._referral_for(actor, referral_model(uow.session, r))
                    for r in uow.session.scalars(query).all()]

    def _known_project(self, project: str | None) -> str | None:
        """The code of the project a read names, as the core holds it: the core's
        check, so an unknown or mistyped one is UnknownProject (exit 1), not an
        empty report."""
        code = _optional_project(project)
        return None if code is None else self.crm.projects.get(code).code

    # tiers and reports ----------------------------------------------------------------------
    def tiers(self, *, actor: Actor | None = None) -> list[TierInfo]:
        """The tiers of the settings with their member counts: an aggregate, for every
        role (no customer in it)."""
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            counts = _members_by_tier(uow.session)
        return [TierInfo(name=t.name, min_points=t.min_points, min_contracts=t.min_contracts,
                         members=counts.get(t.name, 0)) for t in self.settings.tiers]

    def report(self, *, project: str | None = None, actor: Actor | None = None) -> Report:
        """Members by tier, points issued/redeemed/expired, and referrals made,
        converted and the conversion rate per member and per project (``project``
        narrows the referral figures; UnknownProject if there is no such project).

        The referrals per member name each referrer as ``actor`` may see them
        (``crm.access``: masked unless the actor may see that customer in full); a
        partner is refused (the lines are details of members)."""
        from .reports import points_by_period, referrals_by_period

        require_role(actor, READERS, "see membership reports")
        code = self._known_project(project)
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            session = uow.session
            by_tier = _members_by_tier(session)
            left = session.scalar(
                select(func.count()).select_from(MemberRow).where(MemberRow.status == "left")
            ) or 0
            # The points totals and the referrals per project are those of the
            # registered reports (membership.points, membership.referrals): one
            # computation, so `member report` and `recrm report` cannot drift.
            points = points_by_period(session)
            by_project = referrals_by_period(session, project=code)
            query = (
                select(ReferralRow.referrer_id, ReferralRow.status, func.count())
                .where(ReferralRow.status != "superseded")
                .group_by(ReferralRow.referrer_id, ReferralRow.status)
            )
            if code is not None:
                query = query.where(ReferralRow.project == code)
            counts = [(int(r), str(s), int(n)) for r, s, n in session.execute(query)]
            referrer_ids = sorted({r for r, _, _ in counts})
            numbers: dict[int, str | None] = {
                int(cid): number for cid, number in session.execute(
                    select(MemberRow.customer_id, MemberRow.number)
                    .where(MemberRow.customer_id.in_(referrer_ids))
                )
            }
        # A referrer without a membership row was erased (privacy.erase_in): their
        # referrals count in the totals and per project, but get no line of their own.
        listed = [cid for cid in referrer_ids if cid in numbers]
        names = {c.id: c.name for c in self.crm.customers.get_many(listed, actor=actor)}
        per_member: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        for referrer, status, n in counts:
            if referrer in numbers:
                per_member[referrer][0] += n
                per_member[referrer][1] += n if status == "converted" else 0
        made = sum(line.made for line in by_project)
        converted = sum(line.converted for line in by_project)
        return Report(
            project=code,
            members=sum(by_tier.values()),
            left=int(left),
            members_by_tier={t.name: by_tier.get(t.name, 0) for t in self.settings.tiers}
            | {k: v for k, v in by_tier.items() if k not in {t.name for t in
                                                             self.settings.tiers}},
            points=PointsTotals(issued=sum(p.earned for p in points),
                                redeemed=sum(p.redeemed for p in points),
                                expired=sum(p.expired for p in points),
                                deducted=sum(p.deducted for p in points),
                                outstanding=sum(p.net for p in points)),
            referrals=ReferralStats(made=made, converted=converted,
                                    conversion_rate=_rate(converted, made)),
            referrals_by_member=[
                MemberReferralStats(customer_id=cid, number=numbers.get(cid),
                                    name=names.get(cid), made=m, converted=c,
                                    conversion_rate=_rate(c, m))
                for cid, (m, c) in sorted(per_member.items(),
                                          key=lambda kv: (-kv[1][1], -kv[1][0], kv[0]))
            ],
            referrals_by_project=[
                ProjectReferralStats(project=line.project, made=line.made,
                                     converted=line.converted,
                                     conversion_rate=line.conversion_rate)
                for line in by_project
            ],
        )


def _rate(converted: int, made: int) -> float | None:
    return round(converted / made, 4) if made else None


def _members_by_tier(session: Session) -> dict[str, int]:
    return {
        str(tier): int(n)
        for tier, n in session.execute(
            select(MemberRow.tier, func.count())
            .where(MemberRow.status == "active").group_by(MemberRow.tier)
        )
    }


def _chunks(items: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _tier_change(row: TierChangeRow) -> TierChange:
    return TierChange(customer_id=row.customer_id, old_tier=row.old_tier, new_tier=row.new_tier,
                      reason=row.reason, lifetime_points=row.lifetime_points,
                      contracts=row.contracts, at=row.at)


def _member_event(row: MemberEventRow) -> MemberEvent:
    return MemberEvent(customer_id=row.customer_id, number=row.number, action=row.action,
                       note=row.note, actor_staff=row.actor_staff, at=row.at)


def service(crm: CRM) -> Membership:
    """The membership service of ``crm``."""
    return Membership(crm)
