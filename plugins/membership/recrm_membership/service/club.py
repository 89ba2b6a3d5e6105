"""The public service: :class:`Membership`, one transaction a method."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recrm_core import (
    CRM,
    Actor,
    Customer,
    InvalidInput,
    Refused,
    UnitOfWork,
    utcnow,
)
from recrm_core.access import require_role

from ..models import (
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
    TierInfo,
)
from ..settings import MAX_POINTS, MembershipSettings, settings
from ..tables import LedgerRow, MemberEventRow, MemberRow, ReferralRow, TierChangeRow
from .awards import AwardIn, credit_in
from .contracts import add_months
from .enrolment import enrol_in
from .inputs import _clean, _optional_project, _positive, _storable
from .ledger import (
    _event,
    insert_entry,
    lock_members,
    member_in,
    points_of,
    recompute_tier_in,
)
from .referrals import refer_in
from .rules import EXPIRE_ACTION, READERS, RESERVED_KINDS, STAFF, _chunks
from .spending import balance_in, expire_member_in, expire_members_in, redeem_in
from .views import _member_event, _tier_change, entry_model, member_model, referral_model


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

    def _customer_id_for_write(self, uow: UnitOfWork, customer_id: int) -> int:
        """:meth:`_customer_id` for a write: locked against a merge, so a write racing
        one lands on the survivor."""
        return self.crm.customers.resolve_for_write_in(uow, customer_id)

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
            cid = self._customer_id_for_write(uow, customer_id)
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
            cid = self._customer_id_for_write(uow, customer_id)
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
            cid = self._customer_id_for_write(uow, customer_id)
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
            cid = self._customer_id_for_write(uow, customer_id)
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
                # The chunk's members locked at once (in customer order, as one by
                # one would), then expired with one read of their ledgers.
                members = (set(uow.session.scalars(select(MemberRow.customer_id).where(
                    MemberRow.customer_id.in_(list(chunk)))))
                    if dry_run else set(lock_members(uow.session, chunk)))
                entries.extend(expire_members_in(
                    uow.session, [cid for cid in chunk if cid in members], at,
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
        from ..reports import points_by_period, referrals_by_period

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


def service(crm: CRM) -> Membership:
    """The membership service of ``crm``."""
    return Membership(crm)
