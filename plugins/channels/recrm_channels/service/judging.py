"""判客 under the hood: a person's events at a project gathered, the rules in force
read, each registration's decision stored with its transitions, and the lock that
serialises the writers of one mobile at one project."""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import CompoundSelect, bindparam, func, select, union
from sqlalchemy.orm import Session

from recrm_core import CRM, Customer, UnitOfWork, insert_or_ignore, utcnow
from recrm_core.resolution import MOBILE
from recrm_core.tables import IdentityRow
from recrm_core.values import STAGE_RANK

from ..attribution import ACTIVE, Decision, Event, RuleBook, RuleVersion, attribute
from ..settings import Rules, default_rules
from ..tables import ACTIVE_STATES, AgentRow, DisputeRow, RegistrationRow, RuleSetRow, TransitionRow

#: interaction kinds that record a stage step, and the stage they record
STEP_STAGES = {"subscription": "subscriber", "contract": "buyer", "handover": "owner"}
#: a stand-in id for the registration being judged before it is written
_NEW = 2**62


class RegistrationReads:
    """What judging registrations reads once for all of them in their unit of work
    (one, or a batch): the agents named, locked (by one statement, in id order, so
    two batches cannot deadlock on them), the projects' rule books, and the customers
    found by the mobiles, resolved again and locked against a merge (a merge since,
    or running, leaves a registration on the survivor) and loaded. Registering
    changes none of them; per registration, each cost a statement or a whole customer
    (bench/README.md, session 9). A batch naming an unknown agent or customer fails
    as a whole, as before, though perhaps naming another of its errors first."""

    def __init__(self, uow: UnitOfWork, agents: Iterable[str], projects: Iterable[str],
                 customer_ids: Iterable[int | None]) -> None:
        session = uow.session
        self.agents: dict[str, AgentRow] = {row.id: row for row in session.scalars(
            _LOCK_AGENTS, {"ids": sorted(set(agents))})}
        self.books = {code: rule_book(uow.crm, session, code)
                      for code in dict.fromkeys(projects)}
        found = [cid for cid in customer_ids if cid is not None]
        #: each customer id given, and the survivor it is (itself, unless merged away)
        customers = uow.crm.customers
        self.survivor = customers.resolve_many_for_write_in(uow, found) if found else {}
        self.customers = customers.get_many_in(uow, self.survivor.values())
        #: each agent's agency, as a customer's visits are judged (none without one)
        self.agencies = _agency_of_agents(session) if found else {}


def rule_book(crm: CRM, session: Session, project: str) -> RuleBook:
    rows = session.scalars(_RULE_SETS, {"project": project}).all()
    return RuleBook(default_rules(crm), tuple(
        RuleVersion(r.version, r.effective_from, Rules.model_validate(r.rules)) for r in rows),
        crm.config.zone)


def _agency_of_agents(session: Session) -> dict[str, str]:
    return {agent: agency for agent, agency in session.execute(_AGENCY_OF_AGENTS)}


# Prebuilt: 判客 runs them on every judged visit, stage move and registration, and
# building them per call cost about as much as running them.
_RULE_SETS = select(RuleSetRow).where(RuleSetRow.project == bindparam("project"))
_AGENCY_OF_AGENTS = select(AgentRow.id, AgentRow.agency)
_LOCK_AGENTS = select(AgentRow).where(AgentRow.id.in_(bindparam("ids", expanding=True))
                                      ).order_by(AgentRow.id).with_for_update()
#: an agent's registrations at a project that may count against their cap
_HELD_BY_AGENT = select(RegistrationRow).where(
    RegistrationRow.agent_id == bindparam("agent"), RegistrationRow.project == bindparam("project"),
    RegistrationRow.state.in_(("pending", "confirmed")))
_HELD_BY_AGENCY = select(func.count()).select_from(RegistrationRow).where(
    RegistrationRow.mobile == bindparam("mobile"), RegistrationRow.project == bindparam("project"),
    RegistrationRow.agency == bindparam("agency"), RegistrationRow.state.in_(ACTIVE_STATES))
_REGISTRATIONS_OF = select(RegistrationRow).where(
    RegistrationRow.mobile.in_(bindparam("mobiles", expanding=True)),
    RegistrationRow.project == bindparam("project"))
#: each mobile's registrations at the project not refused, the latest first
_LATEST_OF = select(RegistrationRow).where(
    RegistrationRow.mobile.in_(bindparam("mobiles", expanding=True)),
    RegistrationRow.project == bindparam("project"), RegistrationRow.state != "rejected",
).order_by(RegistrationRow.registered_at.desc(), RegistrationRow.id.desc())
_RULINGS = select(DisputeRow).where(
    DisputeRow.claimant_id.in_(bindparam("ids", expanding=True)),
    DisputeRow.state == "upheld").order_by(DisputeRow.id)


def events_for(uow: UnitOfWork, mobile: str, project: str, customer_id: int | None, *,
               customer: Customer | None = None, upto: int | None = None,
               rows: Sequence[RegistrationRow] | None = None,
               agencies: dict[str, str] | None = None) -> list[Event]:
    """Every event of the person with ``mobile`` at ``project``: the registrations not
    refused, and the core's interactions and first link at the project.

    ``customer`` (the customer ``customer_id`` as of the change being judged, else read
    now) and ``upto`` (the last interaction id that change saw, else all) judge one
    change of a batch as it was judged alone; ``rows``: the mobile's registrations at
    the project, when the caller read them already; ``agencies``: each agent's agency,
    likewise."""
    session = uow.session
    if rows is None:
        rows = session.scalars(_REGISTRATIONS_OF, {"mobiles": [mobile],
                                                   "project": project}).all()
    # A ruling is on a registration: none to read for a person without any (a
    # mobile's first registration).
    rulings = session.scalars(_RULINGS, {"ids": [r.id for r in rows]}).all() if rows else []
    ruled = {d.claimant_id for d in rulings}
    # A refused registration is no event, unless a ruling awarded it: then it stays
    # refused, for the reason it was refused, until the ruling.
    refusals = {reg: reason for reg, reason in session.execute(
        select(TransitionRow.registration_id, TransitionRow.reason).where(
            TransitionRow.registration_id.in_(ruled), TransitionRow.state == "rejected"))
    } if ruled else {}
    events = [
        Event("registration", r.registered_at, r.id, r.agency, r.agent_id,
              rule_version=r.rule_version,
              refused=(refusals.get(r.id) or "refused") if r.id in refusals else None)
        for r in rows if r.state != "rejected" or r.id in ruled
    ]
    events += [Event("ruling", d.resolved_at or d.opened_at, d.id, d.agency,
                     registration=d.claimant_id) for d in rulings]
    if customer_id is None:
        return events
    if agencies is None:
        agencies = _agency_of_agents(session)
    if customer is None:
        customer = uow.crm.customers.get_in(uow, customer_id)
    # A step beyond the customer's stage there now was cancelled (a forced move back):
    # it converts nothing.
    reached = max((STAGE_RANK[link.stage] for link in customer.projects
                   if link.project == project), default=len(STAGE_RANK))
    for i in uow.crm.interactions.list_in(session, customer_id):
        if i.project != project or (upto is not None and i.id > upto):
            continue
        if i.kind == "visit":
            agent = i.data.get("agent") if isinstance(i.data.get("agent"), str) else None
            agent = agent or (i.staff if i.staff in agencies else None)
            events.append(Event("visit", i.occurred_at, i.id, agencies.get(agent or ""), agent))
        elif i.kind in STEP_STAGES:
            if STAGE_RANK[STEP_STAGES[i.kind]] <= reached:
                events.append(Event("stage", i.occurred_at, i.id, stage=STEP_STAGES[i.kind]))
            else:  # still makes the customer known
                events.append(Event("contact", i.occurred_at, i.id))
        else:
            events.append(Event("contact", i.occurred_at, i.id))
    for link in customer.projects:
        if link.project == project:
            events.append(Event("contact", link.first_seen_at, 0))
    return events


def store_decision(uow: UnitOfWork, decision: Decision, customer_id: int | None,
                   now: dt.datetime) -> None:
    """Write each registration's decision (ended states first, so the partial unique
    index never sees two active rows) and record each new state once."""
    session = uow.session
    outcomes = sorted((o for o in decision.outcomes if o.registration != _NEW),
                      key=lambda o: o.state in ACTIVE)
    for o in outcomes:
        row = session.get(RegistrationRow, o.registration)
        if row is None:
            continue
        changed = row.state != o.state
        row.state = o.state
        row.reason = o.explanation[:300]
        row.explanation = o.explanation[:1000]
        row.decided_version = o.rule or 0
        row.decided_at = now
        row.confirmed_at = o.times.get("confirmed_at")
        row.protected_until = o.times.get("protected_until")
        row.converted_at = o.times.get("converted_at")
        row.ended_at = o.ended_at
        if customer_id is not None and row.customer_id is None:
            row.customer_id = customer_id
        session.flush()
        if changed:
            _transition(session, row.id, o.state, o.explanation, o.rule or 0,
                        _entered_at(session, row.id, o, now), now)


def _entered_at(session: Session, registration: int, o: Decision,
                now: dt.datetime) -> dt.datetime:
    """When the registration entered ``o.state``: the decision's time for that state (a
    ruling's time when a ruling put it there); ``now`` when it enters a state again (a
    deal cancelled, back to confirmed)."""
    again = session.scalar(_TIMES_ENTERED, {"registration": registration, "state": o.state})
    if again:
        return now
    times = o.times
    at = {"pending": times.get("registered_at"), "confirmed": times.get("confirmed_at"),
          "converted": times.get("converted_at")}.get(o.state, o.ended_at) or now
    ruled = times.get("ruled_at")
    return max(at, ruled) if ruled is not None else at


_TIMES_ENTERED = select(func.count()).select_from(TransitionRow).where(
    TransitionRow.registration_id == bindparam("registration"),
    TransitionRow.state == bindparam("state"))


def _transition(session: Session, registration: int, state: str, reason: str | None,
                version: int, at: dt.datetime, now: dt.datetime) -> None:
    insert_or_ignore(session, TransitionRow, {
        "registration_id": registration, "state": state, "reason": (reason or "")[:300],
        "rule_version": version, "at": at, "recorded_at": now,
    }, on=["registration_id", "state", "at"])


def lock_person(session: Session, project: str, mobile: str) -> None:
    """Serialise the writers of one mobile at one project until the transaction ends
    (PostgreSQL: an advisory lock; SQLite's ``BEGIN IMMEDIATE`` serialises already)."""
    if session.get_bind().dialect.name == "postgresql":
        key = zlib.crc32(f"{project}\x00{mobile}".encode()) - 2**31
        session.execute(select(func.pg_advisory_xact_lock(1_751_000_000, key)))


def judge_customer_in(uow: UnitOfWork, customer: Customer, project: str,
                      now: dt.datetime | None = None, *, upto: int | None = None) -> None:
    """判客 for ``customer`` (as of the change being judged) at ``project`` (a visit or a
    stage move happened): every mobile of theirs with registrations there is replayed
    and the decisions stored. ``upto``: the last interaction id that change saw (see
    ``events_for``)."""
    now = now or utcnow()
    if not customer.mobiles:
        return
    # Serialised with every other writer of these mobiles at the project (a
    # registration, a ruling, another visit logged at the same moment), in one order:
    # two visits judged at once would each see the registration pending and each record
    # its confirmation. The rows are read after the lock, as the one before us left them.
    for mobile in sorted(customer.mobiles):
        lock_person(uow.session, project, mobile)
    # One read of every registration of the customer's mobiles at the project, one
    # of the rules; a mobile's decisions touch only that mobile's rows.
    found = uow.session.scalars(_REGISTRATIONS_OF, {"mobiles": list(customer.mobiles),
                                                    "project": project},
                                execution_options={"populate_existing": True}).all()
    if not found:
        return
    book = rule_book(uow.crm, uow.session, project)
    for mobile in customer.mobiles:
        rows = [r for r in found if r.mobile == mobile]
        if not rows:
            continue
        events = events_for(uow, mobile, project, customer.id, customer=customer,
                            upto=upto, rows=rows)
        store_decision(uow, attribute(events, book, now), customer.id, now)


def registered_pairs(uow: UnitOfWork,
                     wanted: Iterable[tuple[int, str]]) -> set[tuple[int, str]]:
    """Which ``(customer id, project)`` of ``wanted`` have a registration at the project
    naming the customer or one of their mobiles: without one, neither 判客 nor the
    commission ledger has anything to do. The batch hooks ask this once per batch
    (not once per change), since most visits and stage moves are of customers no
    agency brought (in the demo, 14,000 changes for 190 registrations)."""
    wanted = set(wanted)
    conn = uow.connection
    if len(wanted) == 1:  # a batch of one (a single set_stage or log): no IN lists
        [(cid, project)] = wanted
        return wanted if conn.execute(_REGISTERED_ONE, {"cid": cid, "project": project}
                                      ).first() else set()
    found: set[tuple[int, str]] = set()
    cids = sorted({cid for cid, _ in wanted})
    projects = sorted({project for _, project in wanted})
    for start in range(0, len(cids), _CHUNK):
        found.update((cid, project) for cid, project in conn.execute(_REGISTERED, {
            "cids": cids[start:start + _CHUNK], "projects": projects}))
    return found & wanted


def _registered(customers: Any, projects: Any) -> CompoundSelect[Any]:
    """Registrations by the registration's customer, or by a mobile the customer holds
    now (run on the connection: the ORM adds nothing to two plain columns)."""
    return union(
        select(RegistrationRow.customer_id, RegistrationRow.project).where(
            customers(RegistrationRow.customer_id), projects(RegistrationRow.project)),
        select(IdentityRow.customer_id, RegistrationRow.project)
        .join(RegistrationRow, RegistrationRow.mobile == IdentityRow.value)
        .where(IdentityRow.kind == MOBILE, customers(IdentityRow.customer_id),
               projects(RegistrationRow.project)),
    )


#: customer ids per query: far below SQLite's and PostgreSQL's parameter limits
_CHUNK = 500
# Prebuilt. Expanding IN lists are rendered again on every execution (half of this
# query's time in the demo's profile, where most batches are of one change), so a
# batch of one has its own statement.
_REGISTERED = _registered(lambda c: c.in_(bindparam("cids", expanding=True)),
                          lambda p: p.in_(bindparam("projects", expanding=True)))
_REGISTERED_ONE = _registered(lambda c: c == bindparam("cid"),
                              lambda p: p == bindparam("project"))
