"""Referrals inside a unit of work: made, converted on signing, rewarded once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from recrm_core import (
    Customer,
    NotFound,
    Refused,
    UnitOfWork,
    utcnow,
)

from ..models import (
    Referral,
)
from ..settings import settings
from ..tables import MemberRow, ReferralRow
from .awards import AwardIn, credit_in
from .ledger import lock_member, lock_members
from .rules import WITHHELD, _chunks
from .views import referral_model


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


def pending_referrals(conn: Connection,
                      signings: Iterable[tuple[int, str]]) -> set[tuple[int, str]]:
    """Those of ``(customer id, project)`` with a pending referral: one query for a
    batch of signings, mostly of customers nobody referred, on the unit of work's
    connection (two plain columns: a signing nobody referred makes no ``Session``)."""
    wanted = set(signings)
    found: set[tuple[int, str]] = set()
    ids = sorted({cid for cid, _ in wanted})
    for chunk in _chunks(ids, 500):
        found.update((int(cid), str(project)) for cid, project in conn.execute(
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


def refer_in(uow: UnitOfWork, referrer_id: int, referred_id: int, code: str) -> Referral:
    """``Membership.refer`` inside a unit of work (its actor refers), for a project
    ``code`` as the core holds it. Refused leaves nothing written: a
    :class:`ReferralBatch` of one."""
    batch = ReferralBatch(uow, code, referrers=[referrer_id], referred=[referred_id])
    batch.add(referrer_id, referred_id)
    return batch.write()[0]


class ReferralBatch:
    """Many referrals for project ``code`` (as the core holds it) in one unit of work,
    each checked as :func:`refer_in` checks one, written together.

    The customers named at construction (``referrers``, ``referred``) are resolved and
    locked for the write, the referred loaded, the referrers' member rows locked and
    the live referrals of the referred at ``code`` read, a few statements for the lot
    (one :func:`refer_in` each cost a resolution, a whole-customer load, a member lock
    and a savepoint per referral). :meth:`add` checks one referral against that and
    the referrals added before it (a customer named later is read then);
    :meth:`write` inserts them, in the order added.

    Read in the transaction that records the referrals rather than before it (on
    SQLite this also serialises the checks with stage changes, which take the same
    write lock). What the batch read is the state it checks against: a stage change
    or a member leaving inside the same unit of work between :meth:`add` and
    :meth:`write` is not seen, so make those before the batch or after its write.
    """

    def __init__(self, uow: UnitOfWork, code: str, *, referrers: Iterable[int] = (),
                 referred: Iterable[int] = ()) -> None:
        self.uow, self.code = uow, code
        self._survivor: dict[int, int] = {}
        self._customers: dict[int, Customer] = {}
        self._members: dict[int, MemberRow | None] = {}
        #: the referrer of each referred customer with a live referral at ``code``
        self._live: dict[int, int] = {}
        self._rows: list[dict[str, Any]] = []
        self._read(referrers, referred)

    def _read(self, referrers: Iterable[int], referred: Iterable[int]) -> None:
        """Resolve, lock and read what checking these customers' referrals needs (what
        was read before is left as it is)."""
        referrers, referred = list(referrers), list(referred)
        session, customers = self.uow.session, self.uow.crm.customers
        # In the order refer_in resolved them: the referrer first (its NotFound first).
        new = [i for i in dict.fromkeys([*referrers, *referred]) if i not in self._survivor]
        if new:
            self._survivor.update(customers.resolve_many_for_write_in(self.uow, new))
        referred_ids = sorted({self._survivor[i] for i in referred} - set(self._customers))
        if referred_ids:
            self._customers.update(customers.get_many_in(self.uow, referred_ids))
            for chunk in _chunks(referred_ids, 500):
                self._live.update((int(referred_id), int(referrer_id))
                                  for referred_id, referrer_id in session.execute(
                    _LIVE_REFERRALS, {"ids": list(chunk), "project": self.code}))
        member_ids = sorted({self._survivor[i] for i in referrers} - set(self._members))
        if member_ids:
            found = lock_members(session, member_ids)
            self._members.update((cid, found.get(cid)) for cid in member_ids)

    def add(self, referrer_id: int, referred_id: int) -> None:
        """Check one referral (Refused, or NotFound for a referrer who is no member,
        as :func:`refer_in` says) and keep it for :meth:`write`."""
        self._read([referrer_id], [referred_id])
        referrer = self._survivor[referrer_id]
        referred = self._customers[self._survivor[referred_id]]
        code = self.code
        if referrer == referred.id:
            raise Refused(f"customer {referrer} cannot refer themselves")
        stage = next((p.stage for p in referred.projects if p.project == code), None)
        if stage == "owner":
            raise Refused(f"customer {referred.id} already owns at {code}")
        if stage == "buyer":
            raise Refused(f"customer {referred.id} already signed a contract at {code}")
        member = self._members[referrer]
        if member is None:
            raise NotFound(f"customer {referrer} is not a member")
        if member.status != "active":
            raise Refused(f"member {member.number} (customer {referrer}) has left "
                          "the club and cannot refer")
        if referred.id in self._live:
            raise _already_referred(referred.id, code, self._live[referred.id])
        self._live[referred.id] = referrer
        self._rows.append({
            "referrer_id": referrer, "referred_id": referred.id, "project": code,
            "status": "pending", "created_at": utcnow(), "converted_at": None,
            "reward_entry_id": None,
            "actor_staff": self.uow.actor.staff_id if self.uow.actor else None,
            "note": None})

    def write(self) -> list[Referral]:
        """Insert the referrals added, in order, by one statement; their models. One that
        another transaction wrote meanwhile for the same customer and project (the live
        referrals' unique index) is Refused here, as :func:`refer_in` refuses it: the
        referrals added before it are then written, none after it."""
        session, rows = self.uow.session, self._rows
        self._rows = []
        if not rows:
            return []
        ids: dict[int, int] = {}
        try:
            with session.begin_nested():
                # The referred are distinct in a batch: each new id is matched by them.
                ids = dict(session.execute(_INSERT_REFERRAL, rows).all())
        except IntegrityError:
            # Which one: each on its own, so the refusal names it.
            for row in rows:
                try:
                    with session.begin_nested():
                        ids.update(session.execute(_INSERT_REFERRAL, row).all())
                except IntegrityError:
                    earlier = session.scalars(
                        select(ReferralRow.referrer_id).where(
                            ReferralRow.referred_id == row["referred_id"],
                            ReferralRow.project == row["project"],
                            ReferralRow.status != "superseded")
                    ).first()
                    raise _already_referred(row["referred_id"], row["project"],
                                            earlier) from None
        return [referral_model(session, ReferralRow(id=ids[row["referred_id"]], **row))
                for row in rows]


def _already_referred(referred_id: int, code: str, referrer_id: int | None) -> Refused:
    by = f" by customer {referrer_id}" if referrer_id is not None else ""
    return Refused(f"customer {referred_id} was already referred for {code}{by}")


_REFERRALS = cast(Table, ReferralRow.__table__)
#: a referral's row (or many: one statement), its new id returned by the referred customer
_INSERT_REFERRAL = insert(_REFERRALS).returning(_REFERRALS.c.referred_id, _REFERRALS.c.id)
#: the live referrals (as the unique index counts them) of customers at a project
_LIVE_REFERRALS = select(ReferralRow.referred_id, ReferralRow.referrer_id).where(
    ReferralRow.referred_id.in_(bindparam("ids", expanding=True)),
    ReferralRow.project == bindparam("project"), ReferralRow.status != "superseded")
