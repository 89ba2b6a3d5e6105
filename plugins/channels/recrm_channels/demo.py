"""The channels part of ``recrm demo``.

Three agencies and their agents bring leads to the project on sale (XL2) over the
last six months, through the plugin's public service: registrations back-dated to
when they were made, visits logged at the sales office (判客 runs on each), some
subscriptions within the protection. So the demo holds every state: pending (recent,
no visit yet), confirmed, converted, expired (no visit within the window), released
(protection ran out), and rejected (another agency held the lead, or the person was a
known customer of the project already). Commission terms are set for each agency;
some subscribers sign (the deal's commission), one deal is cancelled (a clawback), and
two refused registrations are disputed: one upheld (the customer and the commission
move), one dismissed. The section ends with the channel report. Randomness comes only
from ``rng``.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from recrm_core import CRM, DemoSection, NotFound, Refused, utcnow
from recrm_core.resolution import MOBILE
from recrm_core.tables import CustomerProjectRow, IdentityRow, InteractionRow, ProjectRow

from .commission import Commissions
from .disputes import Disputes
from .models import AgentRegistrationIn, VisitIn
from .report import report
from .service import Channels
from .settings import NAME

PROJECT = "XL2"
#: (code, name, agents)
AGENCIES: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    ("LJ", "链家 Lianjia", (("lj.zhang", "张磊"), ("lj.wang", "王芳"), ("lj.li", "李强"))),
    ("WAWJ", "我爱我家 5i5j", (("wawj.chen", "陈静"), ("wawj.zhou", "周杰"))),
    ("ZY", "中原地产 Centaline", (("zy.huang", "黄敏"), ("zy.xu", "徐涛"))),
)
#: the agencies' weights (the first brings most leads)
WEIGHTS = (0.5, 0.3, 0.2)
LEADS = 140
#: leads of the last two days nobody has visited yet (pending)
FRESH = 6
DAYS = 180


def _setup(crm: CRM, channels: Channels) -> dict[str, list[str]]:
    agents: dict[str, list[str]] = {}
    for code, name, people in AGENCIES:
        channels.add_agency(code, name, contact=f"{people[0][1]} (店长)")
        for agent_id, agent_name in people:
            channels.add_agent(agent_id, agent_name, code)
        agents[code] = [a for a, _ in people]
    terms = Commissions(crm)
    for (code, _, _), pct in zip(AGENCIES, ("1.5", "1.2", "1.8"), strict=True):
        terms.set_terms(code, PROJECT, percent=pct, visit_reward="300",
                        subscription_reward="2000")
    return agents


def _strangers(crm: CRM, customer_ids: Sequence[int]) -> list[int]:
    """The ids of ``customer_ids`` with a mobile and no link to the project, in order:
    one query, where loading every demo customer to look cost more than the rest of
    the section's reads."""
    with crm.unit_of_work(readonly=True) as uow:
        linked = select(CustomerProjectRow.customer_id).join(
            ProjectRow, ProjectRow.id == CustomerProjectRow.project_id).where(
            ProjectRow.code == PROJECT)
        found = set(uow.session.scalars(select(IdentityRow.customer_id).where(
            IdentityRow.kind == MOBILE, IdentityRow.customer_id.not_in(linked))))
    return sorted(found & set(customer_ids))


def _known_customers(crm: CRM, customer_ids: Sequence[int], anchor: dt.datetime,
                     rng: random.Random) -> list[str]:
    """Mobiles of up to 25 demo customers with an interaction at the project in the
    60 days before today (an agency registering them is refused: known customer).
    Counted from the demo's ``anchor`` (midnight, business time), not from the
    clock: the core's demo dates its interactions at hours of whole days, so a window
    ending at the moment of the run took in other customers in the morning than in
    the afternoon, and a different sample drew another stream from the generator
    every later plugin shares."""
    with crm.unit_of_work(readonly=True) as uow:
        recent = set(uow.session.scalars(
            select(InteractionRow.customer_id).join(
                ProjectRow, ProjectRow.id == InteractionRow.project_id).where(
                ProjectRow.code == PROJECT,
                InteractionRow.occurred_at >= anchor - dt.timedelta(days=60))))
    chosen = sorted(recent & set(customer_ids))
    chosen = rng.sample(chosen, k=min(len(chosen), 25))
    return [c.mobiles[0] for c in crm.customers.get_many(sorted(chosen)) if c.mobiles]


def _sign(crm: CRM, deals: Sequence[tuple[dict[str, Any], dict[str, Any] | None]]
          ) -> list[int]:
    """The leads' subscriptions and contracts in one ``set_stages``; the customers who
    signed a contract. Should the state refuse one move (which rolls the batch back),
    each lead's moves are made one by one, a refused lead skipped."""
    moves = [m for deal in deals for m in deal if m is not None]
    try:
        crm.customers.set_stages(moves)
        return [contract["customer_id"] for _, contract in deals if contract is not None]
    except Refused:
        pass
    signed: list[int] = []
    for subscription, contract in deals:
        try:
            crm.customers.set_stages([subscription])
            if contract is not None:
                crm.customers.set_stages([contract])
                signed.append(contract["customer_id"])
        except Refused:
            continue
    return signed


def seed_demo(crm: CRM, rng: random.Random, customer_ids: list[int],
              anchor: dt.datetime) -> DemoSection:
    try:
        crm.projects.get(PROJECT)
    except NotFound:
        crm.projects.ensure(PROJECT, "星珑湾二期")
    channels = Channels(crm)
    agents = _setup(crm, channels)
    codes = [code for code, _, _ in AGENCIES]
    now = utcnow()
    # Leads: demo customers who never dealt with the project (so the demo's customer
    # count stays as asked); the agencies bring them over the last six months.
    pool = _strangers(crm, customer_ids)
    people = crm.customers.get_many(rng.sample(pool, k=min(len(pool), LEADS + FRESH)))
    fresh = min(FRESH, len(people) // 10)
    leads = sorted(now - dt.timedelta(days=DAYS * rng.random())
                   for _ in range(len(people) - fresh))
    leads += sorted(now - dt.timedelta(hours=rng.uniform(1, 47)) for _ in range(fresh))
    # Registrations first, as they come (each one judged against those stored before
    # it), in one batch; then the visits, then the signings, a batch each: a person's
    # steps keep their order, and no rule reads across persons in a way they change
    # (the agent cap is far away).
    registrations: list[AgentRegistrationIn] = []
    #: the registrations made a few hours later by another agency (refused, disputable)
    second: list[int] = []
    visits: list[VisitIn] = []
    #: per lead: its subscription move, and its contract move if it signs one
    deals: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    for i, (at, person) in enumerate(zip(leads, people, strict=True)):
        agency = rng.choices(codes, WEIGHTS)[0]
        agent = rng.choice(agents[agency])
        mobile, name = person.mobiles[0], person.name
        registrations.append(AgentRegistrationIn(agent=agent, project=PROJECT,
                                                 mobile=mobile, name=name, at=at))
        if rng.random() < 0.12:  # another agency tries a few hours later: refused
            other = rng.choice([c for c in codes if c != agency])
            second.append(len(registrations))
            registrations.append(AgentRegistrationIn(
                agent=rng.choice(agents[other]), project=PROJECT, mobile=mobile,
                at=at + dt.timedelta(hours=rng.randint(2, 40))))
        if i >= len(leads) - fresh or rng.random() < 0.2:
            continue  # not come (yet): pending, then expired
        visit = at + dt.timedelta(hours=rng.uniform(1, 66))
        if visit >= now:
            continue
        visits.append(VisitIn(mobile=mobile, agent=agent if rng.random() < 0.7 else None,
                              name=name, at=visit))
        if rng.random() > 0.35:
            continue
        signed = visit + dt.timedelta(days=rng.uniform(1, 25))
        if signed >= now:
            continue
        unit = f"{13 + i % 4}-{1 + (i // 4) % 2}-{(i // 8) % 30 + 2:02d}01"
        subscription = {"customer_id": person.id, "stage": "subscriber",
                        "project": PROJECT, "unit": unit, "amount": 50_000,
                        "occurred_at": signed}
        contract = signed + dt.timedelta(days=rng.uniform(3, 20))
        deals.append((subscription, {
            "customer_id": person.id, "stage": "buyer", "project": PROJECT, "unit": unit,
            "amount": rng.randrange(2_400_000, 4_800_000, 10_000), "occurred_at": contract,
        } if rng.random() < 0.6 and contract < now else None))
    stored = channels.register_many(registrations)
    lost = [stored[n].id for n in second if stored[n].state == "rejected"]
    channels.visits(PROJECT, visits)
    signed_deals = _sign(crm, deals)
    # Customers of the project already: refused (known customer).
    channels.register_many([AgentRegistrationIn(agent=rng.choice(agents[rng.choice(codes)]),
                                                project=PROJECT, mobile=mobile, at=now)
                            for mobile in _known_customers(crm, customer_ids, anchor, rng)])
    if signed_deals:  # the first deal is cancelled: the agency's commission clawed back
        crm.customers.set_stage(signed_deals[0], "subscriber", PROJECT, force=True)
    disputes = Disputes(crm)
    for n, registration in enumerate(lost[:2]):
        try:
            opened = disputes.open(registration, "经纪人称客户由本公司首先带看 (agent says "
                                   "they brought the customer first)")
        except Refused:
            continue
        disputes.resolve(opened.id, uphold=n == 0, note="查看案场登记与录像 (site log "
                         "and CCTV checked)" if n == 0 else "无证据 (no evidence)")
    found = channels.registrations(project=PROJECT, now=now)
    states = Counter(r.state for r in found)
    rows: list[tuple[str, str]] = [("registrations", f"{len(found)} at {PROJECT}")]
    rows += [(f"  {s}", str(states[s])) for s in ("pending", "confirmed", "converted",
                                                   "expired", "released", "rejected")]
    for code, name, _ in AGENCIES:
        mine = Counter(r.state for r in found if r.agency == code)
        rows.append((f"{code} {name}", f"{sum(mine.values())} registered, "
                     f"{mine['confirmed'] + mine['converted'] + mine['released']} confirmed, "
                     f"{mine['converted']} converted"))
    ruled = Counter(d.state for d in disputes.list())
    rows.append(("disputes", f"{ruled['upheld']} upheld, {ruled['dismissed']} dismissed"))
    for r in report(crm, project=PROJECT):
        rows.append((f"report {r.agency}", f"{r.registrations} registered, {r.confirmed} "
                     f"visited, {r.subscribed} subscribed, {r.contracted} signed "
                     f"({r.deal_amount} CNY); commission {r.accrued} accrued, "
                     f"{r.clawed_back} clawed back"))
    return DemoSection(title=f"{NAME}: agencies and registrations (报备)", rows=rows)
