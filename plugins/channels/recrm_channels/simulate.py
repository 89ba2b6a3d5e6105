"""``simulate``: the last N days of a project's registrations replayed under other rules.

What a channel manager asks before changing a rule mid-campaign: which registrations
would have been accepted or refused, which would be confirmed, converted, expired or
released, and which agency each customer would be attributed to. Every registration
made in the window is judged again, in time order, under the proposed rules with the
same code the service writes with: :func:`~recrm_channels.attribution.attribute` for
判客 and :func:`~recrm_channels.attribution.acceptance` for the refusal (agency
suspended at the time, agent over cap at the time). Registrations made before the
window keep their own rule versions and stored outcomes; they still hold customers.

Commission is compared too: what the ledger holds for the window's registrations (net
of clawbacks) against what each simulated outcome would earn under the agency's terms
today — the visit reward once confirmed, and while converted the subscription reward
and each contract's commission (from the contract's recorded amount) inside visit
protection. A referral that withheld a deal's commission is not replayed.

It reads only: nothing is written, no audit entry either.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, select

from recrm_core import CRM, Actor, InvalidInput, mask_mobile, project_code, utcnow
from recrm_core.access import require_role

from .attribution import Decision, Event, RuleBook, RuleVersion, acceptance, attribute
from .commission import deal_commission
from .service import MANAGERS, STEP_STAGES, as_of, events_for, rule_book
from .settings import Rules, default_rules
from .tables import AgencyRow, CommissionEntryRow, RegistrationRow, TermsRow

#: states that give the customer to the registration's agency
ATTRIBUTED = ("confirmed", "converted", "released")


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class SimulatedChange(_Out):
    """One registration whose outcome the proposed rules change."""

    registration: int
    agency: str
    agent: str
    mobile: str = Field(description="masked (前三后四)")
    registered_at: dt.datetime
    state: str = Field(description="the state now (stored, read as of now)")
    simulated_state: str
    reason: str | None = None
    simulated_reason: str


class AttributionChange(_Out):
    """A customer (a mobile) whose agency would differ."""

    mobile: str = Field(description="masked (前三后四)")
    agency: str | None
    simulated_agency: str | None


class CommissionComparison(_Out):
    """An agency's commission on the window's registrations: the ledger's against the
    simulated outcomes' (exact decimals)."""

    agency: str
    commission: Decimal = Field(description="the ledger's net (entries less clawbacks)")
    simulated_commission: Decimal


class Simulation(_Out):
    """``recrm channel simulate``: the window, the rules compared and what changes."""

    project: str
    since: dt.datetime
    until: dt.datetime
    rule_version: int = Field(description="the version the proposed rules would become")
    rules: Rules
    registrations: int
    accepted: int
    rejected: int
    simulated_accepted: int
    simulated_rejected: int
    states: dict[str, int]
    simulated_states: dict[str, int]
    changes: list[SimulatedChange]
    attributions: list[AttributionChange]
    commission: Decimal = Field(description="the ledger's net on the window's registrations")
    simulated_commission: Decimal
    commissions: list[CommissionComparison] = Field(description="per agency")


def proposed_rules(crm: CRM, values: Mapping[str, Any]) -> Rules:
    """The rules a file proposes, as ``rules set`` would take them (keys left out take
    the ``[channels]`` defaults)."""
    try:
        return Rules.model_validate({**default_rules(crm).model_dump(), **values})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "rules"
        raise InvalidInput("rules", f"{where}: {err['msg']}") from None


def _holds(row: RegistrationRow, at: dt.datetime) -> bool:
    """Whether a stored registration was pending or confirmed at ``at``."""
    if row.state == "rejected" or row.registered_at > at:
        return False
    end = row.converted_at or row.ended_at
    if end is None and row.state == "pending":
        end = row.valid_until
    if end is None and row.state == "confirmed":
        end = row.protected_until
    return end is None or at < end


def _simulated_holds(o: Decision, at: dt.datetime) -> bool:
    if not o.live_at(at):
        return False
    converted = o.times.get("converted_at")
    return converted is None or at < converted


#: a step the customer took: (stage, time, unit, contract amount)
Step = tuple[str, dt.datetime, str | None, int | None]


def earned(o: Decision, terms: TermsRow | None, steps: Sequence[Step],
           counted: set[str]) -> Decimal:
    """What a (simulated) outcome would earn under ``terms``: the visit reward once
    confirmed; while converted, the subscription reward and each contract's commission
    inside visit protection — once per unit, as the ledger: ``counted`` holds the units
    already paid in this simulation (co-buyers' registrations share one)."""
    if terms is None or o.state == "rejected" or "confirmed_at" not in o.times:
        return Decimal("0.00")
    total = terms.visit_reward
    if o.state != "converted":
        return total
    start, end = o.times["confirmed_at"], o.times.get("protected_until")
    inside = [s for s in steps if start <= s[1] and (end is None or s[1] <= end)]
    if any(stage == "subscriber" for stage, *_ in inside):
        total += terms.subscription_reward
    for stage, _, unit, amount in inside:
        # a contract without a unit is its registration's own deal, as in the ledger
        key = unit if unit else f"registration {o.registration}"
        if stage == "buyer" and key not in counted:
            counted.add(key)
            total += deal_commission(terms, None if amount is None else Decimal(amount))
    return total


def simulate(crm: CRM, project: str, values: Mapping[str, Any], *, days: int = 30,
             actor: Actor | None = None, now: dt.datetime | None = None) -> Simulation:
    """Replay the project's registrations of the last ``days`` days under ``values``
    (a rule file's keys) and compare with what happened. Writes nothing."""
    require_role(actor, MANAGERS, "simulate registration rules")
    if not 1 <= days <= 3650:
        raise InvalidInput("days", "days must be between 1 and 3650")
    code = project_code(project)
    crm.projects.get(code)
    rules = proposed_rules(crm, values)
    now = now or utcnow()
    since = now - dt.timedelta(days=days)
    with crm.unit_of_work(actor, readonly=True) as uow:
        session = uow.session
        book = rule_book(crm, session, code)
        rows = list(session.scalars(select(RegistrationRow).where(
            RegistrationRow.project == code).order_by(RegistrationRow.registered_at,
                                                      RegistrationRow.id)))
        suspended = {a.code: a.suspended_at for a in session.scalars(select(AgencyRow))}
    window = [r for r in rows if r.registered_at >= since and r.mobile is not None]
    before = [r for r in rows if r.registered_at < since]
    customer: dict[str, int | None] = {}
    for r in window:
        assert r.mobile is not None
        if customer.get(r.mobile) is None:
            customer[r.mobile] = r.customer_id
    for mobile, cid in customer.items():
        if cid is None:
            found = crm.customers.find(mobile=mobile)
            customer[mobile] = found[0].id if found else None
    proposed = max((v.version for v in book.versions), default=0) + 1
    sim_book = RuleBook(book.default, (*book.versions, RuleVersion(proposed, None, rules)),
                        book.zone)
    version = sim_book.get(proposed)
    # The non-registration events and the earlier registrations of each mobile; the
    # steps (with their units and amounts) and the ledger for the commission.
    with crm.unit_of_work(actor, readonly=True) as uow:
        everything = {mobile: events_for(uow, mobile, code, cid)
                      for mobile, cid in sorted(customer.items())}
        base = {mobile: [e for e in found if e.kind != "registration" or e.at < since]
                for mobile, found in everything.items()}
        # A registration an upheld dispute awarded is replayed as stored (refused when it
        # was, until the ruling), not judged again: the ruling decides it.
        ruled = {e.registration: e for found in everything.values() for e in found
                 if e.kind == "ruling"}
        stored = {e.ref: e for found in everything.values() for e in found
                  if e.kind == "registration" and e.ref in ruled}
        steps: dict[str, list[Step]] = {}
        for mobile, cid in customer.items():
            recorded = {i.id: i for i in crm.interactions.list_in(
                uow.session, cid, kinds=STEP_STAGES)} if cid is not None else {}
            steps[mobile] = [
                (e.stage, e.at, recorded[e.ref].data.get("unit"),
                 recorded[e.ref].data.get("amount"))
                for e in base[mobile] if e.kind == "stage" and e.stage and e.ref in recorded]
        terms = {(t.agency, t.project): t for t in uow.session.scalars(
            select(TermsRow).where(TermsRow.project == code))}
        uow.session.expunge_all()  # the terms outlive the unit of work, loaded
        ledger: dict[int, Decimal] = {reg: total for reg, total in uow.session.execute(
            select(CommissionEntryRow.registration_id, func.sum(CommissionEntryRow.amount))
            .where(CommissionEntryRow.project == code,
                   CommissionEntryRow.registration_id.in_([r.id for r in window]))
            .group_by(CommissionEntryRow.registration_id))}
    agent_of = {r.id: r.agent_id for r in window}
    accepted: dict[str, list[Event]] = {m: [] for m in base}
    refused: dict[int, str] = {}
    decided: dict[int, Decision] = {}
    for row in window:
        assert row.mobile is not None
        at = row.registered_at
        new = Event("registration", at, row.id, row.agency, row.agent_id,
                    rule_version=proposed,
                    refused=stored[row.id].refused if row.id in stored else None)
        if row.id in stored:
            accepted[row.mobile].append(new)
            for o in attribute([*base[row.mobile], *accepted[row.mobile]], sim_book,
                               now).outcomes:
                if o.registration is not None:
                    decided[o.registration] = o
            continue
        seen = [e for e in [*base[row.mobile], *accepted[row.mobile]] if e.at <= at]
        outcome = attribute([*seen, new], sim_book, at).of(row.id)
        assert outcome is not None
        since_when = suspended.get(row.agency)
        held = sum(1 for r in before if r.agent_id == row.agent_id and _holds(r, at))
        held += sum(1 for o in decided.values() if o.registration is not None
                    and agent_of.get(o.registration) == row.agent_id
                    and _simulated_holds(o, at))
        reason = acceptance(outcome, version, agency=row.agency,
                            agency_active=since_when is None or since_when > at,
                            agent_active=held)
        if reason is not None:
            refused[row.id] = reason
            continue
        accepted[row.mobile].append(new)
        for o in attribute([*base[row.mobile], *accepted[row.mobile]], sim_book,
                           now).outcomes:
            if o.registration is not None:
                decided[o.registration] = o
    finals = decided
    changes: list[SimulatedChange] = []
    states: Counter[str] = Counter()
    simulated: Counter[str] = Counter()
    holder: dict[str, str | None] = {}
    sim_holder: dict[str, str | None] = {}
    for row in window:
        assert row.mobile is not None
        state, reason, _ = as_of(row, now)
        fin = finals.get(row.id)
        sim_state = "rejected" if row.id in refused or fin is None else fin.state
        sim_reason = refused.get(row.id) or (fin.explanation if fin else "")
        states[state] += 1
        simulated[sim_state] += 1
        if state in ATTRIBUTED:
            holder[row.mobile] = row.agency
        if sim_state in ATTRIBUTED:
            sim_holder[row.mobile] = row.agency
        if state != sim_state:
            changes.append(SimulatedChange(
                registration=row.id, agency=row.agency, agent=row.agent_id,
                mobile=mask_mobile(row.mobile), registered_at=row.registered_at,
                state=state, simulated_state=sim_state, reason=reason,
                simulated_reason=sim_reason))
    actual: defaultdict[str, Decimal] = defaultdict(Decimal)
    would: defaultdict[str, Decimal] = defaultdict(Decimal)
    counted: set[str] = set()
    for row in window:
        assert row.mobile is not None
        actual[row.agency] += Decimal(ledger.get(row.id) or 0)
        fin = finals.get(row.id)
        if fin is not None and row.id not in refused:
            would[row.agency] += earned(fin, terms.get((row.agency, code)), steps[row.mobile],
                                        counted)
    commissions = [CommissionComparison(agency=a, commission=actual[a].quantize(Decimal("0.01")),
                                        simulated_commission=would[a].quantize(Decimal("0.01")))
                   for a in sorted(set(actual) | set(would))]
    attributions = [
        AttributionChange(mobile=mask_mobile(m), agency=holder.get(m),
                          simulated_agency=sim_holder.get(m))
        for m in sorted(base) if holder.get(m) != sim_holder.get(m)]
    return Simulation(
        project=code, since=since, until=now, rule_version=proposed, rules=rules,
        registrations=len(window),
        accepted=sum(n for s, n in states.items() if s != "rejected"),
        rejected=states["rejected"],
        simulated_accepted=sum(n for s, n in simulated.items() if s != "rejected"),
        simulated_rejected=simulated["rejected"],
        states=dict(sorted(states.items())), simulated_states=dict(sorted(simulated.items())),
        changes=changes, attributions=attributions,
        commission=sum((c.commission for c in commissions), Decimal("0.00")),
        simulated_commission=sum((c.simulated_commission for c in commissions),
                                 Decimal("0.00")),
        commissions=commissions)

