"""The public pool (公海, ``crm.pool``, ``recrm pool``): a lead whose owner does not follow
up in time is released, and another consultant may claim it — one claim wins.

A customer's link to a project is in the pool while it has no owner. ``sweep`` releases
the links whose owner logged no interaction there for ``pool.idle_days`` (counted from
when they got it, ``customer_projects.owner_since``); a subscription or contract at the
project stops the clock for good. A release clears the owner, records the reason in the
pool's history (``pool_events``), cancels the owner's open tasks there and fires
``recrm_owners_changed`` (reason ``released``). ``release_staff`` does the same for
every customer of a consultant (``customers reassign FROM --to-pool``, ``staff leave
--to-pool``).

``claim`` is one guarded ``UPDATE ... WHERE owner_staff IS NULL``: of two consultants
claiming at once the database lets exactly one change the row; the other is Refused
with who has it. The owner it was taken from may not claim it back for
``pool.reclaim_days``; nobody owns more than ``pool.max_owned`` customers at a project
(claims by one consultant at a project are serialised by an advisory lock, so two
claims at once cannot both pass the count). An agency's protection (the channels plugin) is its own
and never touched here.
"""

from __future__ import annotations

import builtins
import datetime as dt
import statistics
import zlib
from typing import TYPE_CHECKING, Literal

from pydantic import Field
from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session, aliased

from .access import OWNERSHIP_MANAGERS, check_writer, require_role
from .customers import _project_codes, resolve_for_write, resolve_id
from .db import UnitOfWork, chunks, utcnow
from .errors import Forbidden, InvalidInput, NotFound, Refused
from .models import Actor, Code, ErasureStep, OwnerChange, _Model, _Out, trusted
from .projects import known_project_id, project_code
from .tables import (
    CustomerProjectRow,
    InteractionRow,
    PoolEventRow,
    ProjectRow,
    TaskRow,
)
from .tasks import period_conditions
from .values import required_code

if TYPE_CHECKING:
    from .crm import CRM

#: why a link was released: its owner did not follow up, their customers were sent to
#: the pool (``reassign --to-pool``), or they left (``staff leave --to-pool``)
ReleaseReason = Literal["idle", "to_pool", "staff_left"]
PoolAction = Literal["released", "claimed"]
#: interaction kinds that stop the pool's clock for good
CLOCK_STOPPERS = ("subscription", "contract")
#: roles that claim for someone else and sweep; a consultant claims for themselves
POOL_MANAGERS = OWNERSHIP_MANAGERS
#: what cancels a released owner's open tasks
RELEASED_TASK_REASON = "released to the public pool"


class PoolEntry(_Out):
    """A customer in a project's pool (their link has no owner)."""

    customer_id: int = Field(description="the customer")
    project: str = Field(description="the project's code")
    stage: str = Field(description="their stage at the project")
    pooled_at: dt.datetime | None = Field(
        default=None, description="when it was last released (none: never owned)")
    released_from: str | None = Field(default=None, description="the owner it was taken from")
    reason: str | None = Field(default=None, description="why it was released: idle, "
                               "to_pool, staff_left")
    first_seen_at: dt.datetime = Field(description="when they first came to the project")


class PoolEvent(_Out):
    """One entry of the pool's history."""

    customer_id: int = Field(description="the customer")
    project: str = Field(description="the project's code")
    action: PoolAction = Field(description="released or claimed")
    staff: str | None = Field(default=None, description="released: the owner it was taken "
                              "from; claimed: the new owner")
    reason: str = Field(description="released: idle, to_pool or staff_left; claimed: claim")
    pooled_at: dt.datetime | None = Field(default=None, description="claimed: when it had "
                                          "entered the pool")
    actor_staff: str | None = Field(default=None, description="who did it (none: a sweep)")
    at: dt.datetime = Field(description="when (UTC)")


class PoolRelease(_Out):
    """One link a sweep released (or, in a dry run, would release)."""

    customer_id: int = Field(description="the customer")
    project: str = Field(description="the project's code")
    owner: str = Field(description="the owner it is taken from")
    idle_since: dt.datetime = Field(description="their last interaction there, or when "
                                    "they got it")


class PoolSweep(_Out):
    """What ``pool sweep`` released."""

    dry_run: bool = Field(description="whether nothing was changed")
    released: list[PoolRelease] = Field(description="the links released")


class PoolReportRow(_Out):
    """One project's pool over the report's period."""

    project: str = Field(description="the project's code")
    released: int = Field(description="links released to the pool")
    claimed: int = Field(description="links claimed from it")
    median_days_in_pool: float | None = Field(
        default=None, description="of the claims with a known release, the median days "
        "between release and claim")
    in_pool: int = Field(description="customers in the pool now (links without owner)")


def _event_model(row: PoolEventRow, code: str) -> PoolEvent:
    return PoolEvent(customer_id=row.customer_id, project=code,
                     action=row.action,
                     staff=row.staff, reason=row.reason, pooled_at=row.pooled_at,
                     actor_staff=row.actor_staff, at=row.at)


def _owner_change(customer_id: int, project: str, old: str | None, new: str | None,
                  reason: str) -> OwnerChange:
    return trusted(OwnerChange, {"customer_id": customer_id, "project": project,
                                 "old_owner": old, "new_owner": new, "reason": reason})


def _staff_id(raw: str, field: str = "staff") -> str:
    try:
        return required_code(raw, "staff id", 64)
    except ValueError as exc:
        raise InvalidInput(field, str(exc)) from None


#: the first key of the advisory locks claims take on PostgreSQL ("pool" in ASCII)
_CLAIM_LOCK = 0x706F6F6C


def _lock_claimant(session: Session, staff: str, project_id: int) -> None:
    """Serialise one consultant's claims at one project until the transaction ends, so
    two claims at once cannot both pass the ``max_owned`` count (PostgreSQL: an
    advisory lock, which holds for ids the directory lacks too; SQLite's ``BEGIN
    IMMEDIATE`` serialises every writer already)."""
    if session.get_bind().dialect.name == "postgresql":
        key = zlib.crc32(f"{project_id}\x00{staff}".encode()) - 2**31
        session.execute(select(func.pg_advisory_xact_lock(_CLAIM_LOCK, key)))


class PoolService:
    """``crm.pool``: the public pool."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    # -- releasing ----------------------------------------------------------------------
    def sweep(self, now: dt.datetime | None = None, *, dry_run: bool = False,
              actor: Actor | None = None) -> PoolSweep:
        """Release every link whose owner has not followed up within ``pool.idle_days``
        (idempotent; for cron). ``dry_run`` lists them and changes nothing."""
        require_role(actor, POOL_MANAGERS, "sweep the public pool")
        check_writer(actor)
        at = now or utcnow()
        cutoff = at - dt.timedelta(days=self.crm.config.pool.idle_days)
        with self.crm.unit_of_work(actor) as uow:
            session = uow.session
            link = CustomerProjectRow
            owned_since = func.coalesce(link.owner_since, link.first_seen_at)
            by_owner = aliased(InteractionRow)
            stopper = aliased(InteractionRow)
            # What happened by ``at`` only: a call dated ahead (a typo's 2062, or on
            # purpose) would otherwise keep the customer from the pool for ever.
            idle = [
                link.owner_staff.is_not(None),
                owned_since <= cutoff,
                ~exists().where(by_owner.customer_id == link.customer_id,
                                by_owner.project_id == link.project_id,
                                by_owner.staff == link.owner_staff,
                                by_owner.occurred_at > cutoff, by_owner.occurred_at <= at),
                ~exists().where(stopper.customer_id == link.customer_id,
                                stopper.project_id == link.project_id,
                                stopper.kind.in_(CLOCK_STOPPERS), stopper.occurred_at <= at),
                link.stage.in_(("prospect", "visitor")),
            ]
            last_by_owner = (
                select(func.max(by_owner.occurred_at))
                .where(by_owner.customer_id == link.customer_id,
                       by_owner.project_id == link.project_id,
                       by_owner.staff == link.owner_staff,
                       by_owner.occurred_at <= at).scalar_subquery())
            found = session.execute(
                select(link.id, link.customer_id, link.project_id, ProjectRow.code,
                       link.owner_staff, owned_since, last_by_owner)
                .join(ProjectRow, ProjectRow.id == link.project_id)
                .where(*idle).order_by(link.project_id, link.customer_id)).all()
            releases = [PoolRelease(customer_id=cid, project=code, owner=owner,
                                    idle_since=max(x for x in (since, last) if x is not None))
                        for _, cid, _, code, owner, since, last in found]
            if dry_run:
                session.rollback()
                return PoolSweep(dry_run=True, released=releases)
            by_staff: dict[str, builtins.list[int]] = {}
            for r, row in zip(releases, found, strict=True):
                by_staff.setdefault(r.owner, []).append(row[0])
            released_ids: set[int] = set()
            for owner, link_ids in by_staff.items():
                for part in chunks(link_ids):
                    # Guarded: an interaction or a reassign that came in since the
                    # select keeps the link where it is.
                    released_ids.update(session.scalars(
                        update(link).where(link.id.in_(part), link.owner_staff == owner, *idle)
                        .values(owner_staff=None, owner_since=None)
                        .returning(link.id).execution_options(synchronize_session=False)))
            done = [(r, row) for r, row in zip(releases, found, strict=True)
                    if row[0] in released_ids]
            self._released(uow, [(r.customer_id, row[2], r.project, r.owner) for r, row in done],
                           "idle", at)
            return PoolSweep(dry_run=False, released=[r for r, _ in done])

    def _released(self, uow: UnitOfWork, links: builtins.list[tuple[int, int, str, str]],
                  reason: ReleaseReason, at: dt.datetime) -> None:
        """After links (customer id, project id, code, old owner) lost their owner:
        the history, the old owners' open tasks there cancelled, the owner-change hook."""
        if not links:
            return
        session = uow.session
        actor = uow.actor.staff_id if uow.actor else None
        session.execute(PoolEventRow.__table__.insert(), [  # type: ignore[attr-defined]
            {"customer_id": cid, "project_id": pid, "action": "released", "staff": owner,
             "reason": reason, "pooled_at": None, "actor_staff": actor, "at": at}
            for cid, pid, _, owner in links])
        by_owner: dict[tuple[int, str], builtins.list[int]] = {}
        for cid, pid, _, owner in links:
            by_owner.setdefault((pid, owner), []).append(cid)
        for (pid, owner), ids in by_owner.items():
            for part in chunks(ids):
                session.execute(
                    update(TaskRow).where(TaskRow.customer_id.in_(part),
                                          TaskRow.project_id == pid,
                                          TaskRow.owner_staff == owner, TaskRow.status == "open")
                    .values(status="cancelled", cancel_reason=RELEASED_TASK_REASON, closed_at=at)
                    .execution_options(synchronize_session=False))
        self.crm.hooks.owners_changed(uow, [
            _owner_change(cid, code, owner, None, "released") for cid, _, code, owner in links])
        self.crm.audit.record(uow, "pool", details={
            "action": "released", "reason": reason, "links": len(links),
            "staff": sorted({owner for *_, owner in links}),
            "customers": sorted({cid for cid, *_ in links})[:1000]})

    def release_staff(self, from_staff: str, project: str | None = None, *,
                      reason: ReleaseReason = "to_pool", actor: Actor | None = None,
                      now: dt.datetime | None = None) -> int:
        """Release every customer-project link ``from_staff`` owns (at ``project``, or
        everywhere) to the pool; returns how many links."""
        require_role(actor, POOL_MANAGERS, "release customers to the public pool")
        check_writer(actor)
        source = _staff_id(from_staff)
        with self.crm.unit_of_work(actor) as uow:
            return self.release_staff_in(uow, source, project, reason, now or utcnow())

    def release_staff_in(self, uow: UnitOfWork, source: str, project: str | None,
                         reason: ReleaseReason, at: dt.datetime) -> int:
        """:meth:`release_staff` inside a running operation."""
        session = uow.session
        link = CustomerProjectRow
        conditions = [link.owner_staff == source]
        if project is not None:
            conditions.append(link.project_id == known_project_id(session,
                                                                  project_code(project)))
        moved = session.execute(
            update(link).where(*conditions).values(owner_staff=None, owner_since=None)
            .returning(link.customer_id, link.project_id)
            .execution_options(synchronize_session=False)).all()
        codes = _project_codes(session, {pid for _, pid in moved})
        self._released(uow, [(cid, pid, codes[pid], source) for cid, pid in sorted(moved)],
                       reason, at)
        return len(moved)

    # -- claiming -----------------------------------------------------------------------
    def claim(self, customer_id: int, project: str, staff: str | None = None,
              actor: Actor | None = None, now: dt.datetime | None = None) -> PoolEvent:
        """``staff`` (default: the actor) takes a customer from the project's pool.
        Refused when someone owns it (naming them), when ``staff`` is the owner it was
        taken from within ``pool.reclaim_days``, or holds ``pool.max_owned`` already."""
        require_role(actor, (*POOL_MANAGERS, "sales"), "claim customers from the pool")
        claimant = _staff_id(staff) if staff else (actor.staff_id if actor else None)
        if claimant is None:
            raise InvalidInput("staff", "give who claims (a staff id)")
        if actor is not None and actor.role not in POOL_MANAGERS \
                and claimant != actor.staff_id:
            raise Forbidden(f"role {actor.role} may claim only for themselves")
        settings = self.crm.config.pool
        at = now or utcnow()
        with self.crm.unit_of_work(actor) as uow:
            session = uow.session
            self.crm.directory.check(uow, [claimant])
            cid = resolve_for_write(session, customer_id)
            code = project_code(project)
            pid = known_project_id(session, code)
            _lock_claimant(session, claimant, pid)
            link = CustomerProjectRow
            current = session.execute(select(link.id, link.owner_staff).where(
                link.customer_id == cid, link.project_id == pid)).first()
            if current is None:
                raise NotFound(f"customer {cid} is not at project {code}")
            if current[1] is not None:
                raise self._taken(cid, code, current[1], claimant)
            last = session.execute(
                select(PoolEventRow.action, PoolEventRow.staff, PoolEventRow.at)
                .where(PoolEventRow.customer_id == cid, PoolEventRow.project_id == pid)
                .order_by(PoolEventRow.at.desc(), PoolEventRow.id.desc()).limit(1)).first()
            pooled_at = last[2] if last is not None and last[0] == "released" else None
            if pooled_at is not None and last is not None and last[1] == claimant \
                    and at < pooled_at + dt.timedelta(days=settings.reclaim_days):
                raise Refused(f"{claimant} lost customer {cid} at {code} to the pool on "
                              f"{pooled_at.astimezone(self.crm.config.zone):%Y-%m-%d} and "
                              "may claim it back only after "
                              f"{settings.reclaim_days} days (pool.reclaim_days)")
            owned = session.scalar(select(func.count()).select_from(link).where(
                link.owner_staff == claimant, link.project_id == pid)) or 0
            if owned >= settings.max_owned:
                raise Refused(f"{claimant} already owns {owned} customers at {code} "
                              f"(pool.max_owned = {settings.max_owned})")
            won = session.execute(
                update(link).where(link.id == current[0], link.owner_staff.is_(None))
                .values(owner_staff=claimant, owner_since=at)
                .execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
            if not won:
                holder = session.scalar(select(link.owner_staff).where(link.id == current[0]))
                raise self._taken(cid, code, holder, claimant)
            row = PoolEventRow(customer_id=cid, project_id=pid, action="claimed",
                               staff=claimant, reason="claim", pooled_at=pooled_at,
                               actor_staff=actor.staff_id if actor else None, at=at)
            session.add(row)
            session.flush()
            self.crm.hooks.owners_changed(uow, [_owner_change(cid, code, None, claimant,
                                                              "claimed")])
            self.crm.audit.record(uow, "pool", customer_id=cid, details={
                "action": "claimed", "project": code, "staff": claimant})
            return _event_model(row, code)

    @staticmethod
    def _taken(cid: int, code: str, holder: str | None, claimant: str) -> Refused:
        if holder == claimant:
            return Refused(f"{claimant} already owns customer {cid} at {code}")
        return Refused(f"customer {cid} at {code} is not in the pool: {holder} has it")

    # -- reading ------------------------------------------------------------------------
    def list(self, project: str, *, limit: int | None = None, actor: Actor | None = None
             ) -> builtins.list[PoolEntry]:
        """The project's pool: its customers without an owner, longest there first."""
        require_role(actor, ("admin", "manager", "sales", "analyst"), "read the public pool")
        code = project_code(project)
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            session = uow.session
            pid = known_project_id(session, code)
            link = CustomerProjectRow
            rows = session.execute(
                select(link.customer_id, link.stage, link.first_seen_at)
                .where(link.project_id == pid, link.owner_staff.is_(None))
                .order_by(link.customer_id)).all()
            last: dict[int, tuple[str, str | None, str, dt.datetime]] = {}
            ids = [cid for cid, _, _ in rows]
            for part in chunks(ids):
                for cid, action, staff, reason, at in session.execute(
                        select(PoolEventRow.customer_id, PoolEventRow.action, PoolEventRow.staff,
                               PoolEventRow.reason, PoolEventRow.at)
                        .where(PoolEventRow.project_id == pid,
                               PoolEventRow.customer_id.in_(part))
                        .order_by(PoolEventRow.at, PoolEventRow.id)):
                    last[cid] = (action, staff, reason, at)
        entries = []
        for cid, stage, first_seen in rows:
            event = last.get(cid)
            released = event is not None and event[0] == "released"
            entries.append(PoolEntry(
                customer_id=cid, project=code, stage=stage,
                pooled_at=event[3] if released and event else None,
                released_from=event[1] if released and event else None,
                reason=event[2] if released and event else None, first_seen_at=first_seen))
        entries.sort(key=lambda e: (e.pooled_at or e.first_seen_at, e.customer_id))
        return entries[:limit] if limit is not None else entries

    def history(self, customer_id: int, actor: Actor | None = None) -> builtins.list[PoolEvent]:
        """The customer's releases and claims, oldest first."""
        require_role(actor, ("admin", "manager", "sales", "analyst"), "read the public pool")
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            return self.history_in(uow.session, [resolve_id(uow.session, customer_id)])

    def history_in(self, session: Session, ids: builtins.list[int]) -> builtins.list[PoolEvent]:
        """Releases and claims of ``ids``, oldest first (the export lists them)."""
        found: builtins.list[PoolEvent] = []
        for part in chunks(ids):
            found.extend(_event_model(row, code) for row, code in session.execute(
                select(PoolEventRow, ProjectRow.code)
                .join(ProjectRow, ProjectRow.id == PoolEventRow.project_id)
                .where(PoolEventRow.customer_id.in_(part))
                .order_by(PoolEventRow.at, PoolEventRow.id)))
        return found

    def report(self, start: dt.date | None = None, end: dt.date | None = None,
               actor: Actor | None = None) -> builtins.list[PoolReportRow]:
        """Per project, from ``start`` to ``end`` (dates in the business time zone, both
        included): released, claimed, the median days claimed customers had been in the
        pool; and how many are in it now."""
        require_role(actor, ("admin", "manager", "analyst"), "read the pool report")
        conditions = period_conditions(PoolEventRow.at, start, end, self.crm.config.zone)
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            session = uow.session
            counts: dict[str, dict[str, int]] = {}
            for code, action, n in session.execute(
                    select(ProjectRow.code, PoolEventRow.action, func.count())
                    .join(ProjectRow, ProjectRow.id == PoolEventRow.project_id)
                    .where(*conditions).group_by(ProjectRow.code, PoolEventRow.action)):
                counts.setdefault(code, {})[action] = n
            waits: dict[str, builtins.list[float]] = {}
            for code, at, pooled in session.execute(
                    select(ProjectRow.code, PoolEventRow.at, PoolEventRow.pooled_at)
                    .join(ProjectRow, ProjectRow.id == PoolEventRow.project_id)
                    .where(*conditions, PoolEventRow.action == "claimed",
                           PoolEventRow.pooled_at.is_not(None))):
                if pooled is not None:
                    waits.setdefault(code, []).append((at - pooled).total_seconds() / 86400)
            in_pool = dict(session.execute(
                select(ProjectRow.code, func.count())
                .join(CustomerProjectRow, CustomerProjectRow.project_id == ProjectRow.id)
                .where(CustomerProjectRow.owner_staff.is_(None))
                .group_by(ProjectRow.code)).all())
        codes = sorted(set(counts) | set(in_pool))
        return [PoolReportRow(
            project=code, released=counts.get(code, {}).get("released", 0),
            claimed=counts.get(code, {}).get("claimed", 0),
            median_days_in_pool=round(statistics.median(waits[code]), 1)
            if waits.get(code) else None,
            in_pool=int(in_pool.get(code, 0))) for code in codes]


def pool_erasure(session: Session, ids: builtins.list[int]) -> ErasureStep:
    """An erasure's part in the pool's history: kept (codes and staff ids, no personal
    data), for the pool's figures."""
    kept = 0
    for part in chunks(ids):
        kept += session.scalar(select(func.count()).select_from(PoolEventRow)
                               .where(PoolEventRow.customer_id.in_(part))) or 0
    return ErasureStep(table="pool_events", retained=kept,
                       basis="releases and claims: codes and staff ids, no personal data"
                       if kept else None)


class ClaimIn(_Model):
    """Claim a customer from a project's pool (``POST /v1/pool/claims``)."""

    customer_id: int = Field(ge=1, le=2**31 - 1, description="the customer")
    project: str = Field(min_length=1, max_length=64, description="the project's code")
    staff: Code = Field(default=None, description="who claims; default: the caller")


class ReleaseIn(_Model):
    """Release every customer of a consultant to the pool (``POST /v1/pool/releases``)."""

    from_staff: str = Field(min_length=1, max_length=64, description="their owner now")
    project: str | None = Field(default=None, max_length=64,
                                description="only this project's customers")


class ReleaseResult(_Out):
    """How many customer-project links were released."""

    released: int = Field(description="links released to the pool")
