"""The plugin's hook implementations (re-exported by the package, which is the plugin)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click
from sqlalchemy import ColumnElement, exists, func, select, update

from recrm_core import (
    CRM,
    Customer,
    ErasureStep,
    Interaction,
    SegmentField,
    StageChange,
    TimelineEntry,
    UnitOfWork,
    hookimpl,
    utcnow,
)

from .privacy import erase_in, export_in
from .service import (
    EXPIRE_ACTION,
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
    merge_in,
    pending_referrals,
    recompute_tier_in,
    record_enrolment,
)
from .settings import NAME, MembershipSettings, settings
from .tables import LedgerRow, MemberEventRow, MemberRow, ReferralRow, TierChangeRow

if TYPE_CHECKING:
    from recrm_core.api import ApiRoutes
    from recrm_core.models import CustomerStageChange

STAGE_ORDER = ("prospect", "visitor", "subscriber", "buyer", "owner")


@hookimpl
def recrm_register_settings(register: Any) -> None:
    register(NAME, MembershipSettings)


@hookimpl
def recrm_reports(register: Any) -> None:
    # membership.points and membership.referrals, the figures of `member report`
    # per project and period; imported here, so start-up does not load them.
    from .reports import SPECS

    for spec in SPECS:
        register(spec)


@hookimpl
def recrm_register_audit_actions(register: Any) -> None:
    # An expiry run writes off points of many members at once: recorded, with counts.
    register(EXPIRE_ACTION, "points past their expiry written off (members and points counted)")


@hookimpl
def recrm_interactions_logged(uow: UnitOfWork, interactions: Sequence[Interaction]) -> None:
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


@hookimpl
def recrm_stages_changed(uow: UnitOfWork, changes: Sequence[CustomerStageChange]) -> None:
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


@hookimpl
def recrm_customer_merged(uow: UnitOfWork, survivor: Customer, duplicate_id: int) -> None:
    merge_in(uow, survivor, duplicate_id)


@hookimpl
def recrm_customer_export(uow: UnitOfWork, customer: Customer) -> dict[str, Any] | None:
    # Member record, ledger, tier changes, history and referrals; see privacy.py.
    return export_in(uow, customer)


@hookimpl
def recrm_customer_erase(uow: UnitOfWork, customer: Customer,
                         merged_ids: list[int]) -> list[ErasureStep] | None:
    # Membership and history deleted; ledger amounts and referrals kept anonymously for
    # the club's totals and the other member's figures; see privacy.py.
    return erase_in(uow, customer, merged_ids)


@hookimpl
def recrm_project_renamed(uow: UnitOfWork, old_code: str, new_code: str) -> None:
    # A pending referral converts when the referred customer signs at its project, which
    # the core then names by the new code. The ledger is append-only and keeps the code
    # each entry was written with.
    uow.session.execute(
        update(ReferralRow).where(ReferralRow.project == old_code).values(project=new_code)
        .execution_options(synchronize_session=False)
    )


@hookimpl
def recrm_timeline(uow: UnitOfWork, customer: Customer) -> list[TimelineEntry] | None:
    session, cid = uow.session, customer.id
    entries: list[TimelineEntry] = []
    for ev in session.scalars(select(MemberEventRow).where(MemberEventRow.customer_id == cid)):
        title = {"enrol": "joined the club", "leave": "left the club",
                 "rejoin": "re-joined the club", "merge": "memberships merged"}.get(
                     ev.action, ev.action)
        entries.append(TimelineEntry(
            at=ev.at, kind=f"member_{ev.action}", title=f"{title} ({ev.number})", source=NAME,
            data={"number": ev.number, "note": ev.note, "actor": ev.actor_staff},
        ))
    for tc in session.scalars(select(TierChangeRow).where(TierChangeRow.customer_id == cid)):
        if tc.old_tier is None:
            continue  # the enrolment entry already says where the member started
        entries.append(TimelineEntry(
            at=tc.at, kind="member_tier", title=f"tier {tc.old_tier} → {tc.new_tier}",
            source=NAME,
            data={"old": tc.old_tier, "new": tc.new_tier, "reason": tc.reason,
                  "lifetime_points": tc.lifetime_points, "contracts": tc.contracts},
        ))
    for row in session.scalars(select(LedgerRow).where(LedgerRow.customer_id == cid)):
        entries.append(TimelineEntry(
            at=row.occurred_at, kind=f"points_{row.kind}",
            title=f"{row.points:+d} points ({row.kind})" + (f": {row.reason}" if row.reason
                                                            else ""),
            source=NAME,
            data={"entry": row.id, "points": row.points, "project": row.project,
                  "interaction": row.interaction_id},
        ))
    for ref in session.scalars(select(ReferralRow).where(ReferralRow.referrer_id == cid)):
        entries.append(TimelineEntry(
            at=ref.created_at, kind="referral",
            title=f"referred customer {ref.referred_id} for {ref.project}", source=NAME,
            data={"referral": ref.id, "referred": ref.referred_id, "project": ref.project,
                  "status": ref.status},
        ))
    return entries or None


def _member(customer_id: ColumnElement[int]) -> ColumnElement[Any]:
    return exists().where(MemberRow.customer_id == customer_id, MemberRow.status == "active")


def _tier(customer_id: ColumnElement[int]) -> ColumnElement[Any]:
    # Non-members (and members who left) have no tier: NULL, found by is_null.
    return (
        select(MemberRow.tier)
        .where(MemberRow.customer_id == customer_id, MemberRow.status == "active")
        .scalar_subquery()
    )


def _points(customer_id: ColumnElement[int]) -> ColumnElement[Any]:
    return (
        select(func.coalesce(func.sum(LedgerRow.points), 0))
        .where(LedgerRow.customer_id == customer_id)
        .scalar_subquery()
    )


def _number(customer_id: ColumnElement[int]) -> ColumnElement[Any]:
    return (
        select(MemberRow.number)
        .where(MemberRow.customer_id == customer_id, MemberRow.status != "merged")
        .scalar_subquery()
    )


@hookimpl
def recrm_segment_fields(register: Any) -> None:
    register(SegmentField(name="membership.member", expression=_member, type="bool",
                          description="an active member of the club"))
    register(SegmentField(name="membership.tier", expression=_tier, type="str",
                          description="tier of an active member (null otherwise)"))
    register(SegmentField(name="membership.points", expression=_points, type="int",
                          description="points balance (0 for non-members)"))
    register(SegmentField(name="membership.number", expression=_number, type="str",
                          description="member number (kept after leaving)"))


@hookimpl
def recrm_register_commands(cli: click.Group) -> None:
    from .cli import member_group

    cli.add_command(member_group)


@hookimpl
def recrm_api_routes(crm: CRM, routes: ApiRoutes) -> None:
    # /v1/membership/members/...: imported here, so no command pays for FastAPI.
    from .api import add_routes

    add_routes(crm, routes)


@hookimpl
def recrm_demo(crm: CRM, rng: Any, customer_ids: list[int]) -> Any:
    from .demo import seed_demo

    return seed_demo(crm, rng, customer_ids)


@hookimpl
def recrm_message_fields(uow: UnitOfWork, customers: list[Customer]) -> dict[int, Any] | None:
    # {{ membership.tier }} and {{ membership.number }} in newsletters: active members.
    rows = uow.session.execute(
        select(MemberRow.customer_id, MemberRow.tier, MemberRow.number)
        .where(MemberRow.customer_id.in_([c.id for c in customers]),
               MemberRow.status == "active"))
    return {cid: {"tier": tier, "number": number} for cid, tier, number in rows} or None
