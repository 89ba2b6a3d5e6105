"""The club's part of ``recrm demo``.

The core's demo has already moved customers through the funnel, so owners were
enrolled by the stage hook (when ``auto_enrol`` is on). On top of that the club:
enrols a few buyers who opted in, credits members' past contracts (through the
contract hook's own award, so nothing is awarded twice), records attendance at
owners' days over the last three years, lets members redeem, has members refer
prospects of the project on sale (some of whom then sign), and finally runs the
expiry, so old points are written off. Each step of many members is one
transaction through the service's ``_in`` functions (awards as one batch); the
expiry and the report go through the service. Randomness comes only from ``rng``.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence

from sqlalchemy import select

from recrm_core import CRM, DemoSection, Refused, StageMove, UnitOfWork
from recrm_core.tables import CustomerProjectRow, ProjectRow

from .service import (
    AwardIn,
    Membership,
    ReferralBatch,
    award_many_in,
    enrol_many_in,
    interaction_award,
    redeem_in,
    spendable_in,
)
from .settings import NAME, settings
from .tables import MemberRow

#: owners' days (days ago, name); the oldest are past the default 24-month expiry
EVENTS: tuple[tuple[int, str], ...] = (
    (1000, "2022 新春业主答谢会"),
    (820, "2022 业主运动会"),
    (640, "2023 中秋业主家宴"),
    (400, "2024 亲子嘉年华"),
    (200, "2024 业主音乐节"),
    (45, "2025 春季社区市集"),
)
REWARDS = (200, 500, 800, 1500)


def _members(crm: CRM) -> list[int]:
    with crm.unit_of_work() as uow:
        return list(uow.session.scalars(
            select(MemberRow.customer_id).where(MemberRow.status == "active")
            .order_by(MemberRow.customer_id)
        ))


def _links(crm: CRM, customer_ids: Sequence[int]) -> dict[int, list[tuple[str, str]]]:
    """Each of ``customer_ids`` (in id order) with its (project, stage) links: one
    query, where loading every demo customer whole cost more than the enrolment and
    the referrals it served (bench/README.md, session 11)."""
    wanted = set(customer_ids)
    links: dict[int, list[tuple[str, str]]] = {cid: [] for cid in sorted(wanted)}
    with crm.unit_of_work(readonly=True) as uow:
        for cid, project, stage in uow.session.execute(
                select(CustomerProjectRow.customer_id, ProjectRow.code,
                       CustomerProjectRow.stage)
                .join(ProjectRow, ProjectRow.id == CustomerProjectRow.project_id)):
            if cid in wanted:
                links[cid].append((project, stage))
    return links


def _enrol(crm: CRM, links: dict[int, list[tuple[str, str]]], rng: random.Random) -> None:
    auto_enrol = settings(crm).auto_enrol
    # One transaction and one batch for the lot; a member already enrolled is left
    # as is. Owners, unless the integrator turned auto-enrolment off; a third of
    # buyers opt in.
    opted: list[int] = []
    for cid, projects in links.items():
        signed = [stage for _, stage in projects if stage in ("buyer", "owner")]
        owner = "owner" in signed
        if (owner and not auto_enrol) or (signed and not owner and rng.random() < 0.33):
            opted.append(cid)
    customers = crm.customers.get_many(opted)
    with crm.unit_of_work() as uow:
        enrol_many_in(uow, customers, note="demo: opted in")


def _credit_contracts(crm: CRM, member_ids: Sequence[int], points: int) -> None:
    # One transaction and one batch of awards for the lot: the demo writes thousands.
    # The members' contracts read a few hundred members at a time (list_in per member
    # was 741 statements).
    with crm.unit_of_work() as uow:
        contracts = crm.interactions.list_many_in(uow.session, member_ids, ("contract",))
        award_many_in(uow, [
            (cid, interaction_award(interaction, points))
            for cid in member_ids
            for interaction in contracts[cid]
        ])


def _attend(crm: CRM, member_ids: Sequence[int], rng: random.Random, points: int,
            now: dt.datetime) -> None:
    # One transaction and one batch of awards per owners' day.
    for days_ago, title in EVENTS:
        at = now - dt.timedelta(days=days_ago, hours=rng.randint(0, 6))
        with crm.unit_of_work() as uow:
            award_many_in(uow, [
                (cid, AwardIn(entry_kind="earn", event_kind="event", subject=cid, ref=title,
                              points=points, occurred_at=at, reason=f"attended {title}"))
                for cid in member_ids if rng.random() < 0.35
            ])


def _redeem(crm: CRM, member_ids: Sequence[int], rng: random.Random,
            now: dt.datetime) -> None:
    # Members spend what they can (not what is due to expire), in one transaction;
    # what each can spend read at once (a redemption changes only its member's).
    with crm.unit_of_work() as uow:
        spendable = spendable_in(uow.session, member_ids, now)
        for cid in member_ids:
            if rng.random() < 0.3:
                affordable = [p for p in REWARDS if p <= spendable[cid]]
                if affordable:
                    redeem_in(uow, cid, rng.choice(affordable),
                              reason="demo: gift redeemed", ref=None, at=now)


def seed_demo(crm: CRM, rng: random.Random, customer_ids: list[int],
              anchor: dt.datetime) -> DemoSection:
    service = Membership(crm)
    # The day, not the time of day: contracts were credited at their hour on whole
    # days before today, so an expiry run at the moment the demo runs wrote off a
    # different sum in the morning than in the afternoon. Owners' days, redemptions
    # and the expiry are placed against the demo's anchor (midnight, business time).
    now = anchor
    links = _links(crm, customer_ids)
    _enrol(crm, links, rng)
    members = _members(crm)
    contract_points = service.settings.earn.get("contract")
    if contract_points:
        _credit_contracts(crm, members, contract_points)
    _attend(crm, members, rng, service.settings.earn.get("event") or 50, now)
    _redeem(crm, members, rng, now)
    _referrals(crm, rng, links, members)
    expired = service.expire(now)
    report = service.report()
    rows: list[tuple[str, str]] = [("members", str(report.members))]
    rows += [(f"  {tier}", str(n)) for tier, n in report.members_by_tier.items()]
    rows += [
        ("points issued", str(report.points.issued)),
        ("points redeemed", str(report.points.redeemed)),
        ("points expired", str(report.points.expired)),
        ("points outstanding", str(report.points.outstanding)),
    ]
    r = report.referrals
    rate = "-" if r.conversion_rate is None else f"{r.conversion_rate:.0%}"
    rows.append(("referrals converted", f"{r.converted} of {r.made} ({rate})"))
    for p in report.referrals_by_project:
        rows.append((f"  {p.project}", f"{p.converted} of {p.made}"))
    if expired.points:
        rows.append(("expired in this run", f"{expired.points} points of {expired.members}"
                     " members"))
    return DemoSection(title=f"{NAME}: owners' club", rows=rows)


def _referrals(crm: CRM, rng: random.Random, links: dict[int, list[tuple[str, str]]],
               members: Sequence[int]) -> None:
    if not members:
        return
    # Prospects and visitors of each project may be referred for it.
    leads: dict[str, list[int]] = {}
    for cid, projects in links.items():
        for project, stage in projects:
            if stage in ("prospect", "visitor"):
                leads.setdefault(project, []).append(cid)
    for project in sorted(leads):
        pool = leads[project]
        chosen = rng.sample(pool, k=min(len(pool), max(1, len(members) // 4)))
        # One transaction per project: the referrals as one batch (the members and
        # the chosen read and locked at once), written before the signings; then the
        # signings through set_stages_in, one batch for a run of non-members'
        # signings, so the batch hooks fire once for the run rather than twice per
        # signing. The draws are made in the same order, and no referral's check reads
        # what a signing changes (the referred are distinct, the referrers members
        # already). A referred club member's signing is a batch of its own: a batch
        # awards its contracts before converting its referrals, and the ledger must be
        # written in the order one move at a time writes it.
        with crm.unit_of_work() as uow:
            club = set(uow.session.scalars(select(MemberRow.customer_id)))
            batch = ReferralBatch(uow, project, referrers=members, referred=chosen)
            signings: list[tuple[bool, list[StageMove]]] = []
            for referred in chosen:
                referrer = rng.choice(members)
                try:
                    batch.add(referrer, referred)
                except Refused:
                    continue  # self-referral or already referred: the club says no
                if rng.random() < 0.3:
                    unit = (f"{rng.randint(1, 12)}-{rng.randint(1, 2)}-"
                            f"{rng.randint(2, 30):02d}01")
                    signings.append((referred in club, [
                        StageMove(customer_id=referred, stage="subscriber", project=project,
                                  unit=unit, amount=50_000),
                        StageMove(customer_id=referred, stage="buyer", project=project,
                                  unit=unit, amount=rng.randint(300, 900) * 10_000),
                    ]))
            batch.write()
            run: list[StageMove] = []
            for in_club, signing in signings:
                if in_club:
                    _sign(crm, uow, run)
                    _sign(crm, uow, signing)
                else:
                    run += signing
            _sign(crm, uow, run)


def _sign(crm: CRM, uow: UnitOfWork, moves: list[StageMove]) -> None:
    """Make ``moves`` as one batch and forget them."""
    if moves:
        crm.customers.set_stages_in(uow, moves)
        moves.clear()
