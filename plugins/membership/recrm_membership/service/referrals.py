"""Referrals inside a unit of work: made, converted on signing, rewarded once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.exc import IntegrityError

from recrm_core import (
    Customer,
    Refused,
    UnitOfWork,
    utcnow,
)

from ..models import (
    Referral,
)
from ..settings import settings
from ..tables import ReferralRow
from .awards import AwardIn, credit_in
from .ledger import lock_member, member_in
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
    ``code`` as the core holds it. Refused leaves nothing written."""
    session = uow.session
    # Read in the transaction that records the referral rather than in one
    # of its own before it (on SQLite this also serialises the check with
    # stage changes, which take the same write lock).
    referrer = uow.crm.customers.resolve_for_write_in(uow, referrer_id)
    referred = uow.crm.customers.get_in(
        uow, uow.crm.customers.resolve_for_write_in(uow, referred_id))
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
