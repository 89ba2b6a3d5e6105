"""Enrolment inside a unit of work: new members' rows and numbers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, bindparam, update

from recrm_core import (
    Customer,
    UnitOfWork,
    insert_or_ignore_many,
    utcnow,
)

from ..settings import settings
from ..tables import MemberRow, TierChangeRow
from .contracts import contract_units, count_contracts
from .ledger import _event, lock_members, recompute_tier_in


def enrol_in(
    uow: UnitOfWork, customer: Customer, *, note: str | None = None,
    at: dt.datetime | None = None, upto: int | None = None,
) -> tuple[MemberRow, bool]:
    """Enrol ``customer`` (or re-join a member who left). Returns the row and whether
    anything changed: an active member is returned unchanged. ``upto``: as
    :func:`contracts_of`'s. :func:`enrol_many_in` of one."""
    return enrol_many_in(uow, [customer], note=note, at=at, upto=upto)[customer.id]


def enrol_many_in(
    uow: UnitOfWork, customers: Sequence[Customer], *, note: str | None = None,
    at: dt.datetime | None = None, upto: int | None = None,
) -> dict[int, tuple[MemberRow, bool]]:
    """:func:`enrol_in` for many customers (a customer named twice counts once): by
    customer, the row and whether anything changed. Their rows are locked by one
    statement per 500, their contracts read by one, and the new members' rows
    inserted by :func:`insert_members` in the order given (their numbers as one
    enrolment at a time gives them); members who left re-join first."""
    session, conf, now = uow.session, settings(uow.crm), at or utcnow()
    unique = list({c.id: c for c in customers}.values())
    found = lock_members(session, [c.id for c in unique])
    units = contract_units(session, [c.id for c in unique
                                     if found.get(c.id) is None
                                     or found[c.id].status != "active"])
    done: dict[int, tuple[MemberRow, bool]] = {}
    joining: list[Joining] = []
    for customer in unique:
        member = found.get(customer.id)
        contracts = count_contracts(customer, units.get(customer.id, ()), upto)
        if member is None:
            joining.append(Joining(customer.id, contracts, now))
        elif member.status == "active":
            done[customer.id] = (member, False)
        else:
            member.status, member.left_at, member.contracts = "active", None, contracts
            _event(session, member, "rejoin", note, uow.actor, now)
            recompute_tier_in(session, conf, member, "rejoin", now)
            done[customer.id] = (member, True)
    joined = insert_members(uow, joining) if joining else {}
    for one in joining:
        member, new = done[one.customer_id] = joined[one.customer_id]
        if new:
            record_enrolment(uow, member, note, now)
    return done


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
