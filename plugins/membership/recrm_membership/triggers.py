"""What the club does when interactions are logged and stages change (the hooks
``recrm_interactions_logged`` and ``recrm_stages_changed``, inside the operation's
transaction): points earned, owners enrolled, contracts counted, referrals converted."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from recrm_core import (
    Interaction,
    StageChange,
    UnitOfWork,
    utcnow,
)

from .service import (
    SEEN_INTERACTIONS,
    SIGNED,
    ContractUnit,
    Joining,
    award_interaction_in,
    contract_units,
    convert_referral_in,
    count_contracts,
    insert_members,
    lock_member_ids,
    lock_members,
    pending_referrals,
    recompute_tier_in,
    record_enrolment,
)
from .settings import MembershipSettings, settings
from .tables import MemberRow

if TYPE_CHECKING:
    from recrm_core.models import CustomerStageChange

STAGE_ORDER = ("prospect", "visitor", "subscriber", "buyer", "owner")


def interactions_logged_in(uow: UnitOfWork, interactions: Sequence[Interaction]) -> None:
    # Remember them by customer: a handover that makes a customer an owner is logged
    # before the stage hook enrols them, which then awards it and what the batch
    # logged for them after it (see _stage_changed); a stage change names its
    # interaction by id only.
    seen: dict[int, list[Interaction]] = uow.state.setdefault(SEEN_INTERACTIONS, {})
    earn = settings(uow.crm).earn
    earning: list[tuple[Interaction, int]] = []
    for interaction in interactions:
        seen.setdefault(interaction.customer_id, []).append(interaction)
        if points := earn.get(interaction.kind):
            earning.append((interaction, points))
    if not earning:
        return
    # One statement locks the members among the batch's customers (nothing in a
    # batch of interactions enrols anyone or makes anyone leave); their rows are
    # loaded only if there are any (a non-member's visit makes no Session).
    found = lock_member_ids(uow.connection, {i.customer_id for i, _ in earning})
    members = lock_members(uow.session, found) if found else {}
    for interaction, points in earning:
        member = members.get(interaction.customer_id)
        if member is not None and member.status == "active":
            award_interaction_in(uow, member, interaction, points)


def stages_changed_in(uow: UnitOfWork, changes: Sequence[CustomerStageChange]) -> None:
    conf = settings(uow.crm)
    seen: dict[int, list[Interaction]] = uow.state.get(SEEN_INTERACTIONS, {})
    # What can concern the club at all: any change of a customer with a membership
    # row (their contracts), a new owner (enrolment), a first signing (a referral).
    # Asked on the connection first: a batch that concerns no member, no new owner
    # and no referred signing (most single operations) makes no Session.
    found = lock_member_ids(uow.connection, {item.customer.id for item in changes})
    members = lock_members(uow.session, found) if found else {}
    signings = {(item.customer.id, item.change.project) for item in changes
                if _first_signing(item.change)}
    pending = pending_referrals(uow.connection, signings) if signings else set()
    # New owners without a membership row, enrolled by their first change to owner:
    # their rows inserted first, in the order of those changes (so the numbers are
    # those one change at a time gives), each enrolment recorded at its change. The
    # contracts of the batch's members and new owners: one query.
    first = _first_owner_changes(conf, changes, members)
    units = contract_units(uow.session, set(members) | set(first)) \
        if members or first else {}
    joining = _insert_new_members(uow, changes, first, units)
    # Customers this batch enrolled: their row and the last of their interactions
    # considered. A batch delivers its interactions before its stage changes, so their
    # hook found no member in what such a customer was logged after the enrolment:
    # awarded here, each before the next stage change of theirs, as one operation at
    # a time would have (then there is nothing after the enrolment to award).
    enrolled: dict[int, tuple[MemberRow, int]] = {}
    for index, item in enumerate(changes):
        customer, change = item.customer, item.change
        if customer.id in enrolled and change.interaction_id is not None:
            _award_seen(uow, seen, enrolled, customer.id, upto=change.interaction_id)
        if first.get(customer.id) == index:
            members[customer.id] = _enrolled(uow, item, joining[customer.id], seen, enrolled)
        elif customer.id in members:
            _recount(uow, item, members[customer.id], units)
        if _first_signing(change) and (customer.id, change.project) in pending:
            convert_referral_in(uow, customer, change.project, _at(change))
    for customer_id in list(enrolled):
        _award_seen(uow, seen, enrolled, customer_id, upto=None)


def _first_owner_changes(conf: MembershipSettings, changes: Sequence[CustomerStageChange],
                         members: dict[int, MemberRow]) -> dict[int, int]:
    """By customer without a membership row, the index of their first change to
    owner (which enrols them, with ``auto_enrol``)."""
    first: dict[int, int] = {}
    if conf.auto_enrol:
        for index, item in enumerate(changes):
            if item.customer.id not in members and item.change.new_stage == "owner":
                first.setdefault(item.customer.id, index)
    return first


def _insert_new_members(
    uow: UnitOfWork, changes: Sequence[CustomerStageChange], first: dict[int, int],
    units: dict[int, list[ContractUnit]],
) -> dict[int, tuple[MemberRow, bool]]:
    """``insert_members`` for the new owners, with their contracts as of the change
    that enrols them."""
    if not first:
        return {}
    return insert_members(uow, [
        Joining(cid, count_contracts(changes[index].customer, units.get(cid, ()),
                                     changes[index].change.interaction_id),
                _at(changes[index].change))
        for cid, index in first.items()])


def _enrolled(uow: UnitOfWork, item: CustomerStageChange, joined: tuple[MemberRow, bool],
              seen: dict[int, list[Interaction]],
              enrolled: dict[int, tuple[MemberRow, int]]) -> MemberRow:
    """The change that enrolled a new owner (its row inserted): the enrolment
    recorded (unless a concurrent operation enrolled them first) and the change's
    own interaction awarded."""
    customer, change = item.customer, item.change
    member, new = joined
    conf = settings(uow.crm)
    if new:
        record_enrolment(uow, member, f"owner at {change.project}", member.enrolled_at)
        mine = [i.id for i in seen.get(customer.id, ())]
        enrolled[customer.id] = (member, change.interaction_id or max(mine, default=0))
    interaction = next((i for i in seen.get(customer.id, ())
                        if i.id == change.interaction_id),
                       None) if change.interaction_id else None
    if interaction is not None and (points := conf.earn.get(interaction.kind)):
        award_interaction_in(uow, member, interaction, points)
    return member


def _recount(uow: UnitOfWork, item: CustomerStageChange, member: MemberRow,
             units: dict[int, list[ContractUnit]]) -> None:
    """A member's change: their contracts as of it (a batch is answered after all
    of its changes), the tier they reach."""
    customer, change = item.customer, item.change
    contracts = count_contracts(customer, units.get(customer.id, ()), change.interaction_id)
    if contracts != member.contracts:
        member.contracts = contracts
        recompute_tier_in(uow.session, settings(uow.crm), member, "contracts", _at(change))


def _at(change: StageChange) -> dt.datetime:
    # The core always says when the change happened (a back-dated contract at its
    # date); a StageChange built by hand may not.
    return change.occurred_at or utcnow()


def _award_seen(uow: UnitOfWork, seen: dict[int, list[Interaction]],
                enrolled: dict[int, tuple[MemberRow, int]], customer_id: int,
                upto: int | None) -> None:
    """Award the earning interactions of a customer enrolled by this batch logged
    after the last one considered, up to ``upto`` (all: ``None``)."""
    member, after = enrolled[customer_id]
    earn = settings(uow.crm).earn
    for interaction in seen.get(customer_id, ()):
        if after < interaction.id and (upto is None or interaction.id <= upto) and (
                points := earn.get(interaction.kind)):
            award_interaction_in(uow, member, interaction, points)
    enrolled[customer_id] = (member, upto if upto is not None else after)


def _first_signing(change: StageChange) -> bool:
    old_rank = STAGE_ORDER.index(change.old_stage) if change.old_stage else -1
    return change.new_stage in SIGNED and old_rank < STAGE_ORDER.index("buyer")
